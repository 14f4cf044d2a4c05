/* The control API's handlers, by subject: status, pools and desktops (api.c), golden images
 * (api_image.c, api_image_gc.c), sessions and the audit (api_session.c). */
#pragma once
#include "broker/broker.h"

void api_register(Control *c);
void api_image_register(Control *c);
void api_image_gc_register(Control *c);
void api_session_register(Control *c);
void api_app_register(Control *c);
void api_profile_register(Control *c);

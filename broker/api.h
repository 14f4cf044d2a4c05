/* The control API's handlers, by subject: status, pools and desktops (api.c), golden images
 * (api_image.c, api_image_gc.c), sessions and the audit (api_session.c). */
#pragma once
#include "broker/broker.h"
#include "broker/control.h"
#include "imaging/appliance.h"

void api_register(Control *c);
void api_image_register(Control *c);
void api_image_gc_register(Control *c);
void api_session_register(Control *c);
void api_app_register(Control *c);
void api_app_capture_register(Control *c);
void api_profile_register(Control *c);
void api_store_register(Control *c);
/* libguestfs' appliance settings from slate.conf and the accelerator (publish, diff, capture);
 * replies the error itself. Call on the loop thread, before the job is queued. */
int api_appliance_config(Broker *b, ControlRequest *req, ApplianceConfig *ret);

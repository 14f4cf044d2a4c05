/* RDP listeners: accept, apply the pre-auth caps (in all and per source address), hand the
 * socket to a new connection (conn.h). slated never parses RDP itself. */
#pragma once
#include "broker/broker.h"

int listener_start(Broker *b);
void listener_stop(Broker *b);

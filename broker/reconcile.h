/* Start-up reconciliation: adopt the desktops the database lists and whose VMs still run,
 * destroy the rest, and remove every QEMU, overlay, run dir and staging dir nothing owns. */
#pragma once
#include "broker/broker.h"

int reconcile_startup(Broker *b);

/* Shared by the app layer handlers (api_app.c) and capture (api_app_capture.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "broker/broker.h"
#include "broker/control.h"
#include "streaming/layer.h"

/* Move a built layer from staging into the catalogue as the app's next version and reply with it. */
void app_commit(Broker *b, ControlRequest *req, const char *staging, LayerManifest *m, bool current, const char *from);
/* The golden image version (0: current) a layer is made against; replies the error itself. */
int app_image_resolve(Broker *b, ControlRequest *req, const char *image, int64_t version, int *ret_version,
                      char **ret_disk);
/* A new staging dir under <app_dir>/.staging, or NULL (replied). */
char *app_staging_new(Broker *b, ControlRequest *req);
/* The first file another entitled app's current layer shares with the layer in dir, as text. */
char *app_conflict(Broker *b, const char *name, const char *dir, char *const *principals, size_t np);

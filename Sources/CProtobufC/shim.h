#ifndef CTOWER_CPROTOBUFC_SHIM_H
#define CTOWER_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif

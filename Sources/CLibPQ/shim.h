#ifndef CTOWER_CLIBPQ_SHIM_H
#define CTOWER_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif

#ifndef CTOWER_CZLIB_SHIM_H
#define CTOWER_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit2/inflateInit2 are macros that pass sizeof(z_stream) and the version. */
static inline int ctower_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int ctower_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
static inline int ctower_deflate_init_raw(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY);
}
static inline int ctower_inflate_init_zlib(z_stream *stream) {
    return inflateInit2(stream, 15);
}
/* Raw deflate, no header or trailer: the entries of zip archives (.xlsx). */
static inline int ctower_inflate_init_raw(z_stream *stream) {
    return inflateInit2(stream, -15);
}
#endif

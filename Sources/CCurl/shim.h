#ifndef CTOWER_CCURL_SHIM_H
#define CTOWER_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt/getinfo are variadic: Swift cannot call them, so each argument type gets a wrapper. */
static inline CURLcode ctower_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ctower_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ctower_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ctower_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ctower_curl_setopt_write_function(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
    return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f);
}
static inline CURLcode ctower_curl_setopt_header_function(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
    return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, f);
}
static inline CURLcode ctower_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode ctower_curl_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
/* Progress callback: returning non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK); used for cancellation. */
static inline CURLcode ctower_curl_setopt_xferinfo_function(CURL *h, int (*f)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t)) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f);
}
/* Debug callback: with CURLOPT_VERBOSE it sees CURLINFO_HEADER_OUT the moment request headers went out,
   which is how the client tells "never sent" from "sent, outcome unknown". */
static inline CURLcode ctower_curl_setopt_debug_function(CURL *h, int (*f)(CURL *, curl_infotype, char *, size_t, void *)) {
    return curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, f);
}
/* CURLAUTH_BASIC is an unsigned-long macro expression Swift does not import. */
static inline CURLcode ctower_curl_setopt_basic_auth(CURL *h) { return curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC); }
#endif

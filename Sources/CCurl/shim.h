// libcurl for Swift. curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call, so this header
// wraps the few calls remas makes in typed static inline functions.
#ifndef REMAS_CCURL_SHIM_H
#define REMAS_CCURL_SHIM_H

#include <curl/curl.h>

typedef size_t (*remas_curl_read_callback)(char *buffer, size_t size, size_t count, void *context);
typedef int (*remas_curl_progress_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode remas_curl_global_init(void) { return curl_global_init(CURL_GLOBAL_ALL); }

static inline CURLcode remas_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_list(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_upload_size(CURL *handle, curl_off_t size) {
    return curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, size);
}

static inline CURLcode remas_curl_set_read_callback(CURL *handle, remas_curl_read_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_READFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_READDATA, context);
}

static inline CURLcode remas_curl_set_progress_callback(CURL *handle, remas_curl_progress_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
    if (code != CURLE_OK) return code;
    code = curl_easy_setopt(handle, CURLOPT_XFERINFODATA, context);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
}

static inline long remas_curl_response_code(CURL *handle) {
    long code = 0;
    if (curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK) return 0;
    return code;
}

static inline long remas_curl_use_ssl_all(void) { return (long)CURLUSESSL_ALL; }

#endif

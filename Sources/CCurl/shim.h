// libcurl for Swift, loaded on first use.
//
// - curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: the typed functions below make the
//   calls from C.
// - libcurl is opened with dlopen when the first mail is sent, not linked: linked, it loads about 30 shared libraries
//   (GnuTLS, Kerberos, LDAP, SASL, ...) into every server process at start, measured +4 MiB idle RSS, although most
//   servers never send a mail or send one hours later. The header of libcurl4-openssl-dev supplies the types only.
#ifndef REMAS_CCURL_SHIM_H
#define REMAS_CCURL_SHIM_H

#include <curl/curl.h>
#include <dlfcn.h>
#include <stddef.h>

typedef size_t (*remas_curl_read_callback)(char *buffer, size_t size, size_t count, void *context);
typedef int (*remas_curl_progress_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

/// The libcurl functions remas calls, filled by remas_curl_load.
typedef struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *handle);
    CURLcode (*easy_setopt)(CURL *handle, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *handle, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *handle);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *string);
    void (*slist_free_all)(struct curl_slist *list);
} remas_curl_api;

/// Opens libcurl and resolves its functions; returns NULL on success or the loader's message.
static inline const char *remas_curl_load(remas_curl_api *api) {
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) library = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return dlerror();
#define REMAS_CURL_SYMBOL(field, name)                                  \
    *(void **)(&api->field) = dlsym(library, name);                     \
    if (api->field == NULL) return "libcurl lacks the symbol " name;
    REMAS_CURL_SYMBOL(global_init, "curl_global_init")
    REMAS_CURL_SYMBOL(easy_init, "curl_easy_init")
    REMAS_CURL_SYMBOL(easy_cleanup, "curl_easy_cleanup")
    REMAS_CURL_SYMBOL(easy_setopt, "curl_easy_setopt")
    REMAS_CURL_SYMBOL(easy_getinfo, "curl_easy_getinfo")
    REMAS_CURL_SYMBOL(easy_perform, "curl_easy_perform")
    REMAS_CURL_SYMBOL(easy_strerror, "curl_easy_strerror")
    REMAS_CURL_SYMBOL(slist_append, "curl_slist_append")
    REMAS_CURL_SYMBOL(slist_free_all, "curl_slist_free_all")
#undef REMAS_CURL_SYMBOL
    if (api->global_init(CURL_GLOBAL_ALL) != CURLE_OK) return "curl_global_init failed";
    return NULL;
}

static inline CURLcode remas_curl_set_string(const remas_curl_api *api, CURL *handle, CURLoption option, const char *value) {
    return api->easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_long(const remas_curl_api *api, CURL *handle, CURLoption option, long value) {
    return api->easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_pointer(const remas_curl_api *api, CURL *handle, CURLoption option, void *value) {
    return api->easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_list(const remas_curl_api *api, CURL *handle, CURLoption option, struct curl_slist *value) {
    return api->easy_setopt(handle, option, value);
}

static inline CURLcode remas_curl_set_upload_size(const remas_curl_api *api, CURL *handle, curl_off_t size) {
    return api->easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, size);
}

static inline CURLcode remas_curl_set_read_callback(
    const remas_curl_api *api, CURL *handle, remas_curl_read_callback callback, void *context) {
    CURLcode code = api->easy_setopt(handle, CURLOPT_READFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return api->easy_setopt(handle, CURLOPT_READDATA, context);
}

static inline CURLcode remas_curl_set_progress_callback(
    const remas_curl_api *api, CURL *handle, remas_curl_progress_callback callback, void *context) {
    CURLcode code = api->easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
    if (code != CURLE_OK) return code;
    code = api->easy_setopt(handle, CURLOPT_XFERINFODATA, context);
    if (code != CURLE_OK) return code;
    return api->easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
}

static inline long remas_curl_response_code(const remas_curl_api *api, CURL *handle) {
    long code = 0;
    if (api->easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK) return 0;
    return code;
}

static inline long remas_curl_use_ssl_all(void) { return (long)CURLUSESSL_ALL; }

static inline CURL *remas_curl_easy_init(const remas_curl_api *api) { return api->easy_init(); }
static inline void remas_curl_easy_cleanup(const remas_curl_api *api, CURL *handle) { api->easy_cleanup(handle); }
static inline CURLcode remas_curl_easy_perform(const remas_curl_api *api, CURL *handle) { return api->easy_perform(handle); }
static inline const char *remas_curl_strerror(const remas_curl_api *api, CURLcode code) { return api->easy_strerror(code); }
static inline struct curl_slist *remas_curl_slist_append(const remas_curl_api *api, struct curl_slist *list, const char *string) {
    return api->slist_append(list, string);
}
static inline void remas_curl_slist_free_all(const remas_curl_api *api, struct curl_slist *list) { api->slist_free_all(list); }

#endif

// The libnghttp2 surface wsgate uses, with the version differences hidden.
// Debian 12 ships 1.52; the *2 APIs (mem_recv2, mem_send2, data_provider2) exist from 1.60 on,
// where the old ones are deprecated. Swift calls only the wsgate_* names below.
#ifndef WSGATE_CNGHTTP2_SHIM_H
#define WSGATE_CNGHTTP2_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

/// Reads outgoing DATA for a stream into buf; returns bytes written, NGHTTP2_ERR_DEFERRED, or sets
/// NGHTTP2_DATA_FLAG_EOF in *data_flags. user_data is the session's user data.
typedef ptrdiff_t (*wsgate_read_callback)(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                          size_t length, uint32_t *data_flags, void *user_data);

#if NGHTTP2_VERSION_NUM >= 0x013c00

static inline ptrdiff_t wsgate_session_mem_recv(nghttp2_session *session, const uint8_t *in, size_t length) {
    return nghttp2_session_mem_recv2(session, in, length);
}

static inline ptrdiff_t wsgate_session_mem_send(nghttp2_session *session, const uint8_t **data) {
    return nghttp2_session_mem_send2(session, data);
}

static nghttp2_ssize wsgate__read_adapter(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                                          uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
    return ((wsgate_read_callback)source->ptr)(session, stream_id, buf, length, data_flags, user_data);
}

static inline int wsgate_submit_response(nghttp2_session *session, int32_t stream_id, const nghttp2_nv *nva,
                                         size_t nvlen, wsgate_read_callback read_callback) {
    if (read_callback == NULL) {
        return nghttp2_submit_response2(session, stream_id, nva, nvlen, NULL);
    }
    nghttp2_data_provider2 provider;
    provider.source.ptr = (void *)read_callback;
    provider.read_callback = wsgate__read_adapter;
    return nghttp2_submit_response2(session, stream_id, nva, nvlen, &provider);
}

static inline int32_t wsgate_submit_request(nghttp2_session *session, const nghttp2_nv *nva, size_t nvlen,
                                            wsgate_read_callback read_callback) {
    nghttp2_data_provider2 provider;
    provider.source.ptr = (void *)read_callback;
    provider.read_callback = wsgate__read_adapter;
    return nghttp2_submit_request2(session, NULL, nva, nvlen, read_callback == NULL ? NULL : &provider, NULL);
}

#else

static inline ptrdiff_t wsgate_session_mem_recv(nghttp2_session *session, const uint8_t *in, size_t length) {
    return nghttp2_session_mem_recv(session, in, length);
}

static inline ptrdiff_t wsgate_session_mem_send(nghttp2_session *session, const uint8_t **data) {
    return nghttp2_session_mem_send(session, data);
}

static ssize_t wsgate__read_adapter(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                                    uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
    return ((wsgate_read_callback)source->ptr)(session, stream_id, buf, length, data_flags, user_data);
}

static inline int wsgate_submit_response(nghttp2_session *session, int32_t stream_id, const nghttp2_nv *nva,
                                         size_t nvlen, wsgate_read_callback read_callback) {
    if (read_callback == NULL) {
        return nghttp2_submit_response(session, stream_id, nva, nvlen, NULL);
    }
    nghttp2_data_provider provider;
    provider.source.ptr = (void *)read_callback;
    provider.read_callback = wsgate__read_adapter;
    return nghttp2_submit_response(session, stream_id, nva, nvlen, &provider);
}

static inline int32_t wsgate_submit_request(nghttp2_session *session, const nghttp2_nv *nva, size_t nvlen,
                                            wsgate_read_callback read_callback) {
    nghttp2_data_provider provider;
    provider.source.ptr = (void *)read_callback;
    provider.read_callback = wsgate__read_adapter;
    return nghttp2_submit_request(session, NULL, nva, nvlen, read_callback == NULL ? NULL : &provider, NULL);
}

#endif

#endif

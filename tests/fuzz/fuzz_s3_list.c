/* fuzz_s3_list.c - arbitrary bytes as a ListObjectsV2 answer body through the S3 backend's own
 * scan (Key, Size, ETag, IsTruncated, NextContinuationToken, XML entities). A page it accepts
 * must hold a key in every entry. */
#include <stdint.h>
#include <string.h>

#include "store/blob_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_blob_list_t page;
    int rc = fv__s3_list_parse(fv_slice((const char *)data, size), &page);
    if (rc == 0) {
        for (size_t i = 0; i < page.count; i++) {
            if (!page.entries[i].key || !page.entries[i].etag)
                __builtin_trap();
            (void)strlen(page.entries[i].key);
            (void)strlen(page.entries[i].etag);
        }
        if (page.next_cursor)
            (void)strlen(page.next_cursor);
        fv__s3_list_free(&page);
    } else if (rc != FV_EPROTO || page.count || page.entries || page.next_cursor) {
        __builtin_trap();
    }
    return 0;
}

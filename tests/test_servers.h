/* test_servers.h - for tests that use the suite's real servers: the URL that the CTest fixture
 * (tests/support/server_<name>.sh) wrote to $FV_TEST_SERVERS/<name>.url. Header-only. */
#ifndef FV_TESTS_TEST_SERVERS_H
#define FV_TESTS_TEST_SERVERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 0 with the URL in out, or -1 when the fixture left none (not started, or unreadable). */
static inline int fv_test_server_url(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("FV_TEST_SERVERS");
    char path[512];
    if (!dir || cap == 0)
        return -1;
    snprintf(path, sizeof(path), "%s/%s.url", dir, name);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    int ok = fgets(out, (int)cap, fp) != NULL;
    fclose(fp);
    if (!ok)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

#endif

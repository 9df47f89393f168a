/* scratch.h - a private data directory for a test that starts modules: the runtime keeps its
 * database, kv snapshot and registry catalog under data_dir, and two tests sharing one (two
 * suites at once, or ctest -j) would read each other's state. Header-only, after <cmocka.h>. */
#ifndef FV_TESTS_SCRATCH_H
#define FV_TESTS_SCRATCH_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes a fresh directory under $TMPDIR (or /tmp) into dir[len]; fails the test if it cannot. */
static inline void fv_test_scratch_make(char *dir, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, len, "%s/fv-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_true(n > 0 && (size_t)n < len);
    assert_non_null(mkdtemp(dir));
}

/* Removes the directory and all it holds (a test's teardown); the runtime makes a few levels
 * of directories at most, so recursion is fine. */
static inline void fv_test_scratch_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char path[1024];
            int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (n < 0 || (size_t)n >= sizeof(path))
                continue;
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                fv_test_scratch_remove(path);
            else
                (void)unlink(path);
        }
        closedir(d);
    }
    (void)rmdir(dir);
}

#endif

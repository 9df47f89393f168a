/* child_runtime.h - for tests that run modules in processes of their own: a forked child runs
 * a real runtime to its end and reports to the test through a pipe, one line at a time.
 * Header-only: include after <cmocka.h>. */
#ifndef FV_TESTS_CHILD_RUNTIME_H
#define FV_TESTS_CHILD_RUNTIME_H

#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "runtime/runtime.h"

/* Runs the modules which[0..count) under the config text to the end (SIGTERM ends it); the
 * exit status is the runtime's, or 10-13 when setting up failed. *rt is the runtime while it
 * runs, for the modules' callbacks. */
static inline int fv_test_child_run(const char *config, const int *which, size_t count,
                                    fv_runtime_t **rt)
{
    static char *const env[] = {NULL};
    fv_config_t *cfg;
    fv_error_t err;
    if (fv_config_load_string("test.toml", config, strlen(config), env, NULL, &cfg, &err) < 0) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 10;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (fv_runtime_new(&loop, cfg, rt) < 0 || fv_runtime_handle_signals(*rt) < 0)
        return 11;
    int code = 0;
    if (fv_runtime_start(*rt, which, count, &err) < 0) {
        fprintf(stderr, "start: %s\n", err.msg);
        fv_runtime_shutdown(*rt);
        code = 12;
    }
    int run = fv_runtime_run(*rt);
    fv_runtime_free(*rt);
    *rt = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        code = 13;
    fv_config_free(cfg);
    return code ? code : run;
}

/* Forks a child that sets *child_report to its end of a pipe and exits with
 * run(port_base, which, count, dir); returns its pid, and the test's end in *read_end. */
typedef int (*fv_test_child_fn)(int port_base, const int *which, size_t count, const char *dir);
static inline pid_t fv_test_child_spawn(fv_test_child_fn run, int port_base, const int *which,
                                        size_t count, const char *dir, int *child_report,
                                        int *read_end)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        *child_report = fds[1];
        alarm(30);                          /* a stuck child never outlives the test */
        _exit(run(port_base, which, count, dir));
    }
    close(fds[1]);
    *read_end = fds[0];
    return pid;
}

/* Reads one line from fd within timeout_ms; "" on timeout or EOF. */
static inline void fv_test_read_line(int fd, char *out, size_t cap, int timeout_ms)
{
    size_t n = 0;
    out[0] = '\0';
    while (n + 1 < cap) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        if (select(fd + 1, &rd, NULL, NULL, &tv) <= 0)
            break;
        if (read(fd, out + n, 1) != 1 || out[n] == '\n')
            break;
        n++;
    }
    out[n] = '\0';
}

/* Waits for the child (after SIGTERM when term) and checks that it exited with 0. */
static inline void fv_test_child_exits_ok(pid_t pid, bool term)
{
    int st;
    if (term)
        kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Removes two scratch directories the children used. */
static inline void fv_test_rm_dirs(const char *a, const char *b)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", a, b);
    assert_int_equal(system(cmd), 0);
}

#endif

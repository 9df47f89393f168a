/* pwhash_bench.c - what sign-ins cost before any server: argon2id verifications a second
 * (libsodium's crypto_pwhash_str_verify, the call the gateway's login makes) at the given
 * limits, on THREADS threads at once. bench/login.sh puts the gateway's logins a second beside
 * it.   pwhash_bench OPSLIMIT MEMLIMIT_BYTES THREADS SECONDS  ->  "verifies_per_second" */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

static char hash[crypto_pwhash_STRBYTES];
static const char password[] = "correct horse battery";
static double seconds;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *verify_loop(void *arg)
{
    long *count = arg;
    double end = now_s() + seconds;
    while (now_s() < end) {
        if (crypto_pwhash_str_verify(hash, password, sizeof(password) - 1) != 0) {
            fprintf(stderr, "verify failed\n");
            exit(1);
        }
        (*count)++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5 || sodium_init() < 0) {
        fprintf(stderr, "usage: pwhash_bench OPSLIMIT MEMLIMIT_BYTES THREADS SECONDS\n");
        return 2;
    }
    unsigned long long ops = strtoull(argv[1], NULL, 10);
    size_t mem = (size_t)strtoull(argv[2], NULL, 10);
    int threads = atoi(argv[3]);
    seconds = atof(argv[4]);
    if (threads < 1 || threads > 64 || !(seconds > 0) ||
        crypto_pwhash_str_alg(hash, password, sizeof(password) - 1, ops, mem,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        fprintf(stderr, "pwhash_bench: bad arguments or out of memory\n");
        return 2;
    }
    pthread_t t[64];
    long counts[64] = {0};
    double start = now_s();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, verify_loop, &counts[i]) != 0)
            return 1;
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += counts[i];
    }
    printf("%.1f\n", (double)total / (now_s() - start));
    return 0;
}

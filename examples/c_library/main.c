/* A C program using a tcc-exported kernel: batched attention scores, no Python at run time.
 *
 * Build and run with build_and_run.py beside this file, which exports libattn.so and
 * libattn.h first. The program times the kernel and prints a checksum. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "libattn.h"

enum { B = 4, H = 8, Q = 256, K = 256, D = 64 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    float *q = malloc(sizeof(float) * B * H * Q * D);
    float *k = malloc(sizeof(float) * B * H * K * D);
    float *scores = malloc(sizeof(float) * B * H * Q * K);
    for (long i = 0; i < (long)B * H * Q * D; ++i) q[i] = (float)sin(0.001 * (double)i);
    for (long i = 0; i < (long)B * H * K * D; ++i) k[i] = (float)cos(0.002 * (double)i);
    int status = attn(q, k, scores); /* warm-up; 0 on success */
    if (status != 0) {
        fprintf(stderr, "attn failed with status %d\n", status);
        return 1;
    }
    int runs = 20;
    double start = now();
    for (int r = 0; r < runs; ++r) attn(q, k, scores);
    double seconds = (now() - start) / runs;
    double checksum = 0.0;
    for (long i = 0; i < (long)B * H * Q * K; ++i) checksum += scores[i];
    double flops = 2.0 * B * H * Q * K * D;
    printf("attn: %.3f ms per call, %.1f GFLOP/s, checksum %.6e\n", seconds * 1e3,
           flops / seconds * 1e-9, checksum);
    free(q);
    free(k);
    free(scores);
    return 0;
}

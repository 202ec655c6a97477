/*
 * philox.c -- Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011) and the uniform variate the
 * sampler draws from it. A counter-based generator: the output is a pure
 * function of (counter, key), so a draw depends only on the numbers that
 * name it, never on which thread computes it or what else is in the batch.
 */
#include "sample_internal.h"

/* The published multipliers and Weyl key increments (golden ratio and
 * sqrt(3) - 1, as 32-bit fractions). */
enum {
    PHILOX_M0 = 0xD2511F53u,
    PHILOX_M1 = 0xCD9E8D57u,
    PHILOX_W0 = 0x9E3779B9u,
    PHILOX_W1 = 0xBB67AE85u,
    PHILOX_ROUNDS = 10
};

static uint32_t multiply_high_low(uint32_t a, uint32_t b, uint32_t *high)
{
    uint64_t product = (uint64_t)a * b;
    *high = (uint32_t)(product >> 32);
    return (uint32_t)product;
}

void softmax_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t high0, high1;
        uint32_t low0 = multiply_high_low(PHILOX_M0, c0, &high0);
        uint32_t low1 = multiply_high_low(PHILOX_M1, c2, &high1);
        uint32_t next0 = high1 ^ c1 ^ k0;
        uint32_t next2 = high0 ^ c3 ^ k1;
        c0 = next0;
        c1 = low1;
        c2 = next2;
        c3 = low0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

double softmax_sample_uniform(uint64_t seed, uint64_t stream, uint64_t step)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t counter[4] = {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t out[4];
    softmax_philox4x32_10(counter, key, out);
    /* The top 53 bits of the 64-bit word out[1]:out[0]: every multiple of
     * 2^-53 in [0, 1) equally likely, 1 never. */
    uint64_t word = ((uint64_t)out[1] << 32) | out[0];
    return (double)(word >> 11) * 0x1p-53;
}

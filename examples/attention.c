/*
 * attention.c -- the attention-layer call: bf16 scores [batch, heads, q, k],
 * scaled by 1/sqrt(d), a padding keep-mask shared by every head and query,
 * causal masking without a mask tensor, ALiBi slopes per head, bf16
 * probabilities out; then the backward of the same call. The README shows
 * this program; scripts/test.sh compiles and runs it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <softmax.h>

enum { BATCH = 2, HEADS = 4, Q = 5, K = 5 };

int main(void)
{
    const size_t count = (size_t)BATCH * HEADS * Q * K;
    float *scores = malloc(count * sizeof *scores), *dprobs = malloc(count * sizeof *dprobs);
    uint16_t *scores_bf16 = malloc(count * sizeof *scores_bf16), *probs = malloc(count * sizeof *probs);
    float *dscores = malloc(count * sizeof *dscores);
    if (!scores || !dprobs || !scores_bf16 || !probs || !dscores)
        return 1;
    for (size_t i = 0; i < count; i++) {
        scores[i] = (float)sin(0.7 * (double)i) * 4.0f;
        dprobs[i] = (float)cos(0.3 * (double)i);
    }
    softmax_convert(scores_bf16, SOFTMAX_DTYPE_BF16, scores, SOFTMAX_DTYPE_F32, count);

    /* Batch 1 is padded: its last two keys do not exist. One byte per
     * (batch, key), broadcast over heads and queries with zero strides. */
    uint8_t keep[BATCH][K] = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}};
    const int64_t keep_strides[4] = {K, 0, 0, 1};

    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_BF16, K);
    desc.ndim = 4;
    desc.shape[0] = BATCH, desc.shape[1] = HEADS, desc.shape[2] = Q, desc.shape[3] = K;
    desc.scale = 1.0 / sqrt(64.0); /* 1 / sqrt(head dimension) */
    desc.where = &keep[0][0];
    desc.where_strides = keep_strides;
    desc.causal = 1;     /* query i sees keys j <= i */
    desc.max_bias = 8.0; /* ALiBi slopes over head_axis (-3: the heads) */
    int status = softmax_execute(&desc, scores_bf16, NULL, probs);
    if (status != SOFTMAX_OK) {
        fprintf(stderr, "softmax_execute: %s (%s)\n", softmax_strerror(status), softmax_last_error());
        return 1;
    }

    /* Batch 1, head 0: row 0 sees key 0 only; rows 3 and 4 lose the padded keys. */
    float row[K];
    for (int q = 0; q < Q; q++) {
        const size_t at = ((size_t)(1 * HEADS + 0) * Q + (size_t)q) * K;
        softmax_convert(row, SOFTMAX_DTYPE_F32, probs + at, SOFTMAX_DTYPE_BF16, K);
        printf("q%d:", q);
        for (int k = 0; k < K; k++)
            printf(" %.4f", row[k]);
        printf("\n");
    }

    /* The backward of the same call: dscores = scale * p * (dp - <dp, p>),
     * probabilities in bf16, gradients in f32 (grad_dtype, dst_dtype). */
    desc.op = SOFTMAX_OP_SOFTMAX_BACKWARD;
    desc.grad_dtype = SOFTMAX_DTYPE_F32;
    desc.dst_dtype = SOFTMAX_DTYPE_F32;
    status = softmax_execute(&desc, probs, dprobs, dscores);
    if (status != SOFTMAX_OK) {
        fprintf(stderr, "backward: %s (%s)\n", softmax_strerror(status), softmax_last_error());
        return 1;
    }
    /* A masked key gets no gradient. */
    printf("dscores of a padded key: %g\n", dscores[((size_t)(1 * HEADS + 2) * Q + 4) * K + 4]);
    free(scores), free(dprobs), free(scores_bf16), free(probs), free(dscores);
    return 0;
}

/* runnel firmware bench: one call of CMSIS-NN's arm_fully_connected_s8 with the parameter
 * structs filled in (symmetric int8: input, filter and output offsets 0; per-tensor
 * requantization by multiplier / shift; no activation clamp beyond int8). */
#include "arm_nnfunctions.h"

int32_t runnel_bench_cmsis_fc_s8(const int8_t *input, const int8_t *weights, const int32_t *bias,
                                 int8_t *output, int32_t rows, int32_t cols, int32_t multiplier,
                                 int32_t shift)
{
    const cmsis_nn_context ctx = {.buf = NULL, .size = 0};
    const cmsis_nn_fc_params fc = {
        .input_offset = 0,
        .filter_offset = 0,
        .output_offset = 0,
        .activation = {.min = -128, .max = 127},
    };
    const cmsis_nn_per_tensor_quant_params quant = {.multiplier = multiplier, .shift = shift};
    const cmsis_nn_dims input_dims = {.n = 1, .h = 1, .w = 1, .c = cols};
    const cmsis_nn_dims filter_dims = {.n = cols, .h = 1, .w = 1, .c = rows};
    const cmsis_nn_dims bias_dims = {.n = 1, .h = 1, .w = 1, .c = rows};
    const cmsis_nn_dims output_dims = {.n = 1, .h = 1, .w = 1, .c = rows};
    return (int32_t)arm_fully_connected_s8(&ctx, &fc, &quant, &input_dims, input, &filter_dims,
                                           weights, &bias_dims, bias, &output_dims, output);
}

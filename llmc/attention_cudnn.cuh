/*
 * attention_cudnn.cuh: causal self-attention by cuDNN's fused flash
 * attention (make train_gpt2cu USE_CUDNN=1), through cuDNN's backend C
 * API only: no front-end library. The same contract as
 * attention_forward_mma and attention_backward_mma: qkv (B,T,3C) with
 * C = NH*HS (q, k, v of head h at columns h*HS, C + h*HS, 2C + h*HS), out
 * (B,T,C), lse (B,NH,T) the natural-log log-sum-exp of each row of scaled
 * scores; dqkv (B,T,3C).
 *
 * cuDNN computes a graph of operations: we describe attention as the graph
 * its fused-attention engines recognise (the pattern cuDNN's own front end
 * builds for cuDNN 9 before 9.21), and cuDNN picks and compiles a kernel.
 * Tensors are 4-D (batch, head, row, column); our interleaved layouts are
 * described by strides, so nothing is copied. Forward (S, P virtual):
 *   S = (Q K^T) * scale; S = S where row >= col, else -inf (causal);
 *   m = rowmax(S); E = exp(S - m); l = rowsum(E); lse = m + log(l);
 *   P = E / l (bf16); O = P V.
 * Backward (from lse: P is recomputed, never stored):
 *   D = rowsum(dO * O); P = exp(causal(scale * Q K^T - lse));
 *   dV = P^T dO; dS = P * (dO V^T - D) * scale; dK = dS^T Q; dQ = dS K.
 * D goes to a tensor of ours, the (B,NH,T) scratch our kernels use for the
 * same; dQ is accumulated in fp32 in the workspace, then rounded.
 *
 * Plans are built once per shape (B, T, NH, HS) and cached. cuDNN adds dQ
 * with atomics: its backward is not bitwise reproducible, unlike ours.
 *
 * A graph can also be built and checked without a GPU: cuDNN picks engines
 * for a device described in JSON (dev/cuda/cudnn_attention_graphs.c, run by
 * CI, checks that cuDNN supports ours on an H100 that way).
 */
#ifndef LLMC_ATTENTION_CUDNN_CUH
#define LLMC_ATTENTION_CUDNN_CUH

#include <cudnn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "utils.h"

static inline void cudnn_check_at(cudnnStatus_t status, const char *call, const char *file, int line) {
    if (status == CUDNN_STATUS_SUCCESS) return;
    char detail[512] = "";
    cudnnGetLastErrorString(detail, sizeof(detail));
    fatal_at(file, line, "cuDNN: %s: %s (%s)", call, cudnnGetErrorString(status), detail[0] ? detail : "no detail");
}
#define cudnnCheck(call) cudnn_check_at((call), #call, __FILE__, __LINE__)

typedef cudnnBackendDescriptor_t CudnnDesc;

// The tensor uids of the graphs: the ones we bind to memory; virtual
// tensors (never in memory) get uids from CUDNN_UID_VIRTUAL on.
enum {
    CUDNN_UID_Q = 1, CUDNN_UID_K, CUDNN_UID_V, CUDNN_UID_O, CUDNN_UID_LSE, CUDNN_UID_SCALE, CUDNN_UID_NEG_INF,
    CUDNN_UID_DO, CUDNN_UID_DQ, CUDNN_UID_DK, CUDNN_UID_DV, CUDNN_UID_ONE, CUDNN_UID_D, CUDNN_UID_DQ_ACCUM,
    CUDNN_UID_VIRTUAL = 100
};

#define CUDNN_GRAPH_MAX 128  // descriptors of one graph and its engine configurations (the backward: 90)

// A graph under construction: every descriptor it made, to destroy at the end
typedef struct {
    CudnnDesc made[CUDNN_GRAPH_MAX];
    int count;
    CudnnDesc ops[CUDNN_GRAPH_MAX];
    int num_ops;
    int64_t next_uid;
} CudnnGraph;

static inline CudnnDesc cudnn_make(CudnnGraph *g, cudnnBackendDescriptorType_t type) {
    if (g->count == CUDNN_GRAPH_MAX) fatal("cuDNN graph: more than %d descriptors", CUDNN_GRAPH_MAX);
    CudnnDesc d;
    cudnnCheck(cudnnBackendCreateDescriptor(type, &d));
    g->made[g->count++] = d;
    return d;
}

static inline void cudnn_set(CudnnDesc d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                             int64_t count, const void *value) {
    cudnnCheck(cudnnBackendSetAttribute(d, name, type, count, value));
}

static inline void cudnn_set_desc(CudnnDesc d, cudnnBackendAttributeName_t name, CudnnDesc value) {
    cudnn_set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}

// A 4-D tensor: uid 0 makes it virtual (an intermediate, never in memory);
// by_value: a host scalar passed at execution
static inline CudnnDesc cudnn_tensor(CudnnGraph *g, int64_t uid, const int64_t dims[4], const int64_t strides[4],
                                     cudnnDataType_t type, int by_value) {
    CudnnDesc t = cudnn_make(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    bool is_virtual = uid == 0, is_by_value = by_value != 0;
    int64_t alignment = 16;
    if (is_virtual) uid = g->next_uid++;
    cudnn_set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    cudnn_set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    cudnn_set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    cudnn_set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    cudnn_set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    cudnn_set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    if (is_by_value) cudnn_set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &is_by_value);
    cudnnCheck(cudnnBackendFinalize(t));
    return t;
}

// A host fp32 scalar, passed by value
static inline CudnnDesc cudnn_scalar(CudnnGraph *g, int64_t uid) {
    const int64_t one[4] = {1, 1, 1, 1};
    return cudnn_tensor(g, uid, one, one, CUDNN_DATA_FLOAT, 1);
}

// An intermediate of the given shape, packed row-major, of type `type`
static inline CudnnDesc cudnn_virtual(CudnnGraph *g, int64_t B, int64_t H, int64_t R, int64_t C, cudnnDataType_t type) {
    const int64_t dims[4] = {B, H, R, C}, strides[4] = {H * R * C, R * C, C, 1};
    return cudnn_tensor(g, 0, dims, strides, type, 0);
}

static inline void cudnn_add_op(CudnnGraph *g, CudnnDesc op) {
    cudnnCheck(cudnnBackendFinalize(op));
    g->ops[g->num_ops++] = op;
}

// y = mode(x[, b][, t]) elementwise (b, t broadcast), computed in `precision`;
// axis: GEN_INDEX's dimension (else ignored)
static inline void cudnn_pointwise(CudnnGraph *g, cudnnPointwiseMode_t mode, CudnnDesc x, CudnnDesc b, CudnnDesc t,
                                   CudnnDesc y, cudnnDataType_t precision, int64_t axis) {
    CudnnDesc pw = cudnn_make(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    cudnn_set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    cudnn_set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision);
    if (mode == CUDNN_POINTWISE_GEN_INDEX) cudnn_set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
    cudnnCheck(cudnnBackendFinalize(pw));
    CudnnDesc op = cudnn_make(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b) cudnn_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b);
    if (t) cudnn_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    cudnn_add_op(g, op);
}

// y (B,H,R,1) = reduce(x (B,H,R,C)) over the last dimension, in fp32
static inline void cudnn_reduction(CudnnGraph *g, cudnnReduceTensorOp_t mode, CudnnDesc x, CudnnDesc y) {
    CudnnDesc red = cudnn_make(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    cudnnDataType_t fp32 = CUDNN_DATA_FLOAT;
    cudnn_set(red, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode);
    cudnn_set(red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &fp32);
    cudnnCheck(cudnnBackendFinalize(red));
    CudnnDesc op = cudnn_make(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, red);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y);
    cudnn_add_op(g, op);
}

// c (B,H,M,N) = a (B,H,M,K) b (B,H,K,N), accumulated in fp32
static inline void cudnn_matmul(CudnnGraph *g, CudnnDesc a, CudnnDesc b, CudnnDesc c) {
    CudnnDesc mm = cudnn_make(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    cudnnDataType_t fp32 = CUDNN_DATA_FLOAT;
    cudnn_set(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &fp32);
    cudnnCheck(cudnnBackendFinalize(mm));
    CudnnDesc op = cudnn_make(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, mm);
    cudnn_add_op(g, op);
}

// y = x seen through y's dims and strides (a transpose, here)
static inline void cudnn_reshape(CudnnGraph *g, CudnnDesc x, CudnnDesc y) {
    CudnnDesc op = cudnn_make(g, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x);
    cudnn_set_desc(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y);
    cudnn_add_op(g, op);
}

// The causal mask: s (B,H,T,T) where row >= column, -inf elsewhere
static inline CudnnDesc cudnn_causal(CudnnGraph *g, CudnnDesc s, CudnnDesc neg_inf, int64_t B, int64_t H, int64_t T) {
    CudnnDesc row = cudnn_virtual(g, B, H, T, T, CUDNN_DATA_INT32), col = cudnn_virtual(g, B, H, T, T, CUDNN_DATA_INT32);
    CudnnDesc keep = cudnn_virtual(g, B, H, T, T, CUDNN_DATA_BOOLEAN), out = cudnn_virtual(g, B, H, T, T, CUDNN_DATA_FLOAT);
    cudnn_pointwise(g, CUDNN_POINTWISE_GEN_INDEX, s, NULL, NULL, row, CUDNN_DATA_FLOAT, 2);
    cudnn_pointwise(g, CUDNN_POINTWISE_GEN_INDEX, s, NULL, NULL, col, CUDNN_DATA_FLOAT, 3);
    cudnn_pointwise(g, CUDNN_POINTWISE_CMP_GE, row, col, NULL, keep, CUDNN_DATA_BOOLEAN, 0);
    cudnn_pointwise(g, CUDNN_POINTWISE_BINARY_SELECT, s, neg_inf, keep, out, CUDNN_DATA_FLOAT, 0);
    return out;
}

// The tensors of our layouts, as cuDNN's (batch, head, row, column):
// q, k, v of qkv (B,T,3,NH,HS) (K also transposed: (B,NH,HS,T)), and a
// (B,T,NH,HS) tensor such as out
static inline CudnnDesc cudnn_qkv_tensor(CudnnGraph *g, int64_t uid, int transposed, int64_t B, int64_t T,
                                         int64_t NH, int64_t HS) {
    int64_t row = 3 * NH * HS;
    int64_t dims[4] = {B, NH, T, HS}, strides[4] = {T * row, HS, row, 1};
    if (transposed) {
        dims[2] = HS, dims[3] = T;
        strides[2] = 1, strides[3] = row;
    }
    return cudnn_tensor(g, uid, dims, strides, CUDNN_DATA_BFLOAT16, 0);
}

static inline CudnnDesc cudnn_btc_tensor(CudnnGraph *g, int64_t uid, int64_t B, int64_t T, int64_t NH, int64_t HS) {
    const int64_t dims[4] = {B, NH, T, HS}, strides[4] = {T * NH * HS, HS, NH * HS, 1};
    return cudnn_tensor(g, uid, dims, strides, CUDNN_DATA_BFLOAT16, 0);
}

// (B,NH,T) fp32, such as lse
static inline CudnnDesc cudnn_rows_tensor(CudnnGraph *g, int64_t uid, int64_t B, int64_t T, int64_t NH) {
    const int64_t dims[4] = {B, NH, T, 1}, strides[4] = {NH * T, T, 1, 1};
    return cudnn_tensor(g, uid, dims, strides, CUDNN_DATA_FLOAT, 0);
}

// The forward graph: out, lse from qkv
static inline void cudnn_forward_graph(CudnnGraph *g, int64_t B, int64_t T, int64_t NH, int64_t HS) {
    memset(g, 0, sizeof(*g));
    g->next_uid = CUDNN_UID_VIRTUAL;
    const cudnnDataType_t F = CUDNN_DATA_FLOAT;
    CudnnDesc q = cudnn_qkv_tensor(g, CUDNN_UID_Q, 0, B, T, NH, HS), kt = cudnn_qkv_tensor(g, CUDNN_UID_K, 1, B, T, NH, HS);
    CudnnDesc v = cudnn_qkv_tensor(g, CUDNN_UID_V, 0, B, T, NH, HS), o = cudnn_btc_tensor(g, CUDNN_UID_O, B, T, NH, HS);
    CudnnDesc lse = cudnn_rows_tensor(g, CUDNN_UID_LSE, B, T, NH);
    CudnnDesc scale = cudnn_scalar(g, CUDNN_UID_SCALE), neg_inf = cudnn_scalar(g, CUDNN_UID_NEG_INF);
    CudnnDesc s = cudnn_virtual(g, B, NH, T, T, F), scaled = cudnn_virtual(g, B, NH, T, T, F);
    cudnn_matmul(g, q, kt, s);
    cudnn_pointwise(g, CUDNN_POINTWISE_MUL, s, scale, NULL, scaled, F, 0);
    CudnnDesc masked = cudnn_causal(g, scaled, neg_inf, B, NH, T);
    CudnnDesc m = cudnn_virtual(g, B, NH, T, 1, F), shifted = cudnn_virtual(g, B, NH, T, T, F);
    CudnnDesc e = cudnn_virtual(g, B, NH, T, T, F), l = cudnn_virtual(g, B, NH, T, 1, F);
    CudnnDesc log_l = cudnn_virtual(g, B, NH, T, 1, F), p = cudnn_virtual(g, B, NH, T, T, CUDNN_DATA_BFLOAT16);
    cudnn_reduction(g, CUDNN_REDUCE_TENSOR_MAX, masked, m);
    cudnn_pointwise(g, CUDNN_POINTWISE_SUB, masked, m, NULL, shifted, F, 0);
    cudnn_pointwise(g, CUDNN_POINTWISE_EXP, shifted, NULL, NULL, e, F, 0);
    cudnn_reduction(g, CUDNN_REDUCE_TENSOR_ADD, e, l);
    cudnn_pointwise(g, CUDNN_POINTWISE_LOG, l, NULL, NULL, log_l, F, 0);
    cudnn_pointwise(g, CUDNN_POINTWISE_ADD, m, log_l, NULL, lse, F, 0);
    cudnn_pointwise(g, CUDNN_POINTWISE_DIV, e, l, NULL, p, F, 0);
    cudnn_matmul(g, p, v, o);
}

// The backward graph: dqkv from dout, qkv, out, lse (and D, dQ's fp32
// accumulator: tensors of ours)
static inline void cudnn_backward_graph(CudnnGraph *g, int64_t B, int64_t T, int64_t NH, int64_t HS) {
    memset(g, 0, sizeof(*g));
    g->next_uid = CUDNN_UID_VIRTUAL;
    const cudnnDataType_t F = CUDNN_DATA_FLOAT, BF = CUDNN_DATA_BFLOAT16;
    CudnnDesc q = cudnn_qkv_tensor(g, CUDNN_UID_Q, 0, B, T, NH, HS), kt = cudnn_qkv_tensor(g, CUDNN_UID_K, 1, B, T, NH, HS);
    CudnnDesc vt = cudnn_qkv_tensor(g, CUDNN_UID_V, 1, B, T, NH, HS), o = cudnn_btc_tensor(g, CUDNN_UID_O, B, T, NH, HS);
    CudnnDesc d_o = cudnn_btc_tensor(g, CUDNN_UID_DO, B, T, NH, HS), lse = cudnn_rows_tensor(g, CUDNN_UID_LSE, B, T, NH);
    CudnnDesc dq = cudnn_qkv_tensor(g, CUDNN_UID_DQ, 0, B, T, NH, HS), dk = cudnn_qkv_tensor(g, CUDNN_UID_DK, 0, B, T, NH, HS);
    CudnnDesc dv = cudnn_qkv_tensor(g, CUDNN_UID_DV, 0, B, T, NH, HS);
    CudnnDesc scale = cudnn_scalar(g, CUDNN_UID_SCALE), neg_inf = cudnn_scalar(g, CUDNN_UID_NEG_INF);
    CudnnDesc one = cudnn_scalar(g, CUDNN_UID_ONE), D = cudnn_rows_tensor(g, CUDNN_UID_D, B, T, NH);
    const int64_t acc_dims[4] = {B, NH, T, HS}, acc_strides[4] = {NH * T * HS, T * HS, HS, 1};
    CudnnDesc dq_accum = cudnn_tensor(g, CUDNN_UID_DQ_ACCUM, acc_dims, acc_strides, F, 0);
    // D = rowsum(dO * O)
    CudnnDesc dout_o = cudnn_virtual(g, B, NH, T, HS, F), rowsum = cudnn_virtual(g, B, NH, T, 1, F);
    cudnn_pointwise(g, CUDNN_POINTWISE_MUL, d_o, o, NULL, dout_o, F, 0);
    cudnn_reduction(g, CUDNN_REDUCE_TENSOR_ADD, dout_o, rowsum);
    cudnn_pointwise(g, CUDNN_POINTWISE_MUL, rowsum, one, NULL, D, F, 0);
    // P = exp(causal(scale * Q K^T) - lse)
    CudnnDesc s = cudnn_virtual(g, B, NH, T, T, F), scaled = cudnn_virtual(g, B, NH, T, T, F);
    CudnnDesc shifted = cudnn_virtual(g, B, NH, T, T, F), p = cudnn_virtual(g, B, NH, T, T, F);
    cudnn_matmul(g, q, kt, s);
    cudnn_pointwise(g, CUDNN_POINTWISE_MUL, s, scale, NULL, scaled, F, 0);
    cudnn_pointwise(g, CUDNN_POINTWISE_SUB, scaled, lse, NULL, shifted, F, 0);
    CudnnDesc masked = cudnn_causal(g, shifted, neg_inf, B, NH, T);
    cudnn_pointwise(g, CUDNN_POINTWISE_EXP, masked, NULL, NULL, p, F, 0);
    // dV = P^T dO
    const int64_t tt_dims[4] = {B, NH, T, T}, tt_transposed[4] = {NH * T * T, T * T, 1, T};
    CudnnDesc pt = cudnn_tensor(g, 0, tt_dims, tt_transposed, BF, 0);
    cudnn_reshape(g, p, pt);
    cudnn_matmul(g, pt, d_o, dv);
    // dS = P * (dO V^T - D) * scale
    CudnnDesc dp = cudnn_virtual(g, B, NH, T, T, F), dp_d = cudnn_virtual(g, B, NH, T, T, F);
    CudnnDesc p_dp = cudnn_virtual(g, B, NH, T, T, F), ds = cudnn_virtual(g, B, NH, T, T, F);
    cudnn_matmul(g, d_o, vt, dp);
    cudnn_pointwise(g, CUDNN_POINTWISE_SUB, dp, D, NULL, dp_d, F, 0);
    cudnn_pointwise(g, CUDNN_POINTWISE_MUL, dp_d, p, NULL, p_dp, F, 0);
    cudnn_pointwise(g, CUDNN_POINTWISE_MUL, p_dp, scale, NULL, ds, F, 0);
    // dK = dS^T Q
    CudnnDesc dst = cudnn_tensor(g, 0, tt_dims, tt_transposed, BF, 0);
    cudnn_reshape(g, ds, dst);
    cudnn_matmul(g, dst, q, dk);
    // dQ = dS K, summed in fp32, then rounded
    int64_t row = 3 * NH * HS;
    const int64_t k_dims[4] = {B, NH, T, HS}, k_strides[4] = {T * row, HS, row, 1};
    CudnnDesc k = cudnn_tensor(g, 0, k_dims, k_strides, BF, 0);
    cudnn_reshape(g, kt, k);
    cudnn_matmul(g, ds, k, dq_accum);
    cudnn_pointwise(g, CUDNN_POINTWISE_IDENTITY, dq_accum, NULL, NULL, dq, F, 0);
}

static inline void cudnn_graph_free(CudnnGraph *g) {
    for (int i = g->count - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(g->made[i]);
    g->count = g->num_ops = 0;
}

// The finalized operation graph of g's operations, for the GPU of handle
// (NULL without one: then the device descriptor given later says which)
static inline CudnnDesc cudnn_operation_graph(CudnnGraph *g, cudnnHandle_t handle) {
    CudnnDesc graph = cudnn_make(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    cudnn_set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g->num_ops, g->ops);
    if (handle) cudnn_set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    cudnnCheck(cudnnBackendFinalize(graph));
    return graph;
}

// The engine configurations cuDNN's heuristics (mode A) offer for graph on
// the device `device` (a DEVICEPROP descriptor), best first, into configs
// (at most max, made in g); returns how many
static inline int cudnn_engine_configs(CudnnGraph *g, CudnnDesc graph, CudnnDesc device, CudnnDesc *configs, int max) {
    CudnnDesc heur = cudnn_make(g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    cudnn_set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    cudnn_set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    cudnn_set_desc(heur, CUDNN_ATTR_ENGINEHEUR_DEVICEPROP, device);
    cudnnCheck(cudnnBackendFinalize(heur));
    for (int i = 0; i < max; i++) configs[i] = cudnn_make(g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    int64_t got = 0;
    cudnnCheck(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, max, &got,
                                        configs));
    return (int)got;
}

// An execution plan for config on device (run through handle, if not NULL);
// CUDNN_STATUS_SUCCESS or why not
static inline cudnnStatus_t cudnn_try_plan(CudnnDesc config, CudnnDesc device, cudnnHandle_t handle, CudnnDesc *plan) {
    cudnnCheck(cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, plan));
    cudnn_set_desc(*plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config);
    cudnn_set_desc(*plan, CUDNN_ATTR_EXECUTION_PLAN_DEVICEPROP, device);
    if (handle) cudnn_set(*plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    cudnnStatus_t status = cudnnBackendFinalize(*plan);
    if (status != CUDNN_STATUS_SUCCESS) {
        cudnnBackendDestroyDescriptor(*plan);
        *plan = NULL;
    }
    return status;
}

#define CUDNN_MAX_CONFIGS 16

#ifndef CUDNN_GRAPHS_ONLY
// ----------------------------------------------------------------------------
// running the graphs on this process's GPU

#include "attention.cuh"
#include "cuda_common.cuh"

typedef struct {
    int B, T, NH, HS, backward;
    CudnnDesc plan;
    CudnnGraph graph;    // the descriptors the plan was made from, kept while it lives
    int64_t workspace;   // bytes the plan needs
} CudnnPlan;

#define CUDNN_PLANS 8   // cached; past that the oldest goes (the trainer needs two)

static struct {
    cudnnHandle_t handle;
    CudnnDesc device;     // this GPU's properties (from the handle)
    CudnnPlan plans[CUDNN_PLANS];
    int num_plans, built;
    void *workspace;      // the largest plan's workspace, then (backward) dQ's fp32 accumulator
    size_t workspace_bytes;
} cudnn_ctx;

static inline void attention_cudnn_init(void) {
    if (cudnn_ctx.handle) return;
    // device descriptors came in 9.8; from 9.10 the mask's -inf is what the
    // fused engines expect (the front end passes the lowest float before)
    size_t version = cudnnGetVersion();
    if (version < 91000) {
        fatal("cuDNN %zu.%zu is too old for this attention: it needs 9.10 or newer", version / 10000,
              version / 100 % 100);
    }
    cudnnCheck(cudnnCreate(&cudnn_ctx.handle));
    cudnnCheck(cudnnBackendCreateDescriptor(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, &cudnn_ctx.device));
    cudnn_set(cudnn_ctx.device, CUDNN_ATTR_DEVICEPROP_HANDLE, CUDNN_TYPE_HANDLE, 1, &cudnn_ctx.handle);
    cudnnCheck(cudnnBackendFinalize(cudnn_ctx.device));
}

static inline void attention_cudnn_destroy(void) {
    if (!cudnn_ctx.handle) return;
    for (int i = 0; i < cudnn_ctx.num_plans; i++) {
        cudnnBackendDestroyDescriptor(cudnn_ctx.plans[i].plan);
        cudnn_graph_free(&cudnn_ctx.plans[i].graph);
    }
    if (cudnn_ctx.workspace) cudaCheck(cudaFree(cudnn_ctx.workspace));
    cudnnBackendDestroyDescriptor(cudnn_ctx.device);
    cudnnCheck(cudnnDestroy(cudnn_ctx.handle));
    memset(&cudnn_ctx, 0, sizeof(cudnn_ctx));
}

// The plan for this shape and direction: cached, or built (heuristics'
// first configuration that compiles for this GPU)
static inline const CudnnPlan *cudnn_plan_for(int B, int T, int NH, int HS, int backward) {
    for (int i = 0; i < cudnn_ctx.num_plans; i++) {
        const CudnnPlan *p = &cudnn_ctx.plans[i];
        if (p->B == B && p->T == T && p->NH == NH && p->HS == HS && p->backward == backward) return p;
    }
    CudnnPlan *p = &cudnn_ctx.plans[cudnn_ctx.built++ % CUDNN_PLANS];
    if (cudnn_ctx.num_plans == CUDNN_PLANS) {  // evict the oldest (its last run must be over)
        cudaCheck(cudaDeviceSynchronize());
        cudnnBackendDestroyDescriptor(p->plan);
        cudnn_graph_free(&p->graph);
    } else {
        cudnn_ctx.num_plans++;
    }
    CudnnGraph *g = &p->graph;
    if (backward) cudnn_backward_graph(g, B, T, NH, HS);
    else cudnn_forward_graph(g, B, T, NH, HS);
    CudnnDesc graph = cudnn_operation_graph(g, cudnn_ctx.handle), configs[CUDNN_MAX_CONFIGS], plan = NULL;
    int n = cudnn_engine_configs(g, graph, cudnn_ctx.device, configs, CUDNN_MAX_CONFIGS);
    cudnnStatus_t status = CUDNN_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < n && !plan; i++) status = cudnn_try_plan(configs[i], cudnn_ctx.device, cudnn_ctx.handle, &plan);
    if (!plan) {
        fatal("cuDNN attention: no engine runs the %s graph at B=%d T=%d NH=%d HS=%d (%d offered; last: %s); "
              "build without USE_CUDNN", backward ? "backward" : "forward", B, T, NH, HS, n, cudnnGetErrorString(status));
    }
    p->B = B, p->T = T, p->NH = NH, p->HS = HS, p->backward = backward, p->plan = plan;
    cudnnCheck(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, NULL,
                                        &p->workspace));
    return p;
}

// The workspace, grown to at least `bytes` (between steps: synchronizes first)
static inline void *cudnn_workspace(size_t bytes) {
    if (bytes > cudnn_ctx.workspace_bytes) {
        cudaCheck(cudaDeviceSynchronize());
        if (cudnn_ctx.workspace) cudaCheck(cudaFree(cudnn_ctx.workspace));
        cudaCheck(cudaMalloc(&cudnn_ctx.workspace, bytes));
        cudnn_ctx.workspace_bytes = bytes;
        printf("cuDNN attention workspace: %.1f MiB\n", bytes / (double)(1 << 20));
    }
    return cudnn_ctx.workspace;
}

static inline void cudnn_execute(const CudnnPlan *p, int n, const int64_t *uids, void **pointers, void *workspace,
                                 cudaStream_t stream) {
    CudnnDesc pack;
    cudnnCheck(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
    cudnn_set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    cudnn_set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, pointers);
    cudnn_set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    cudnnCheck(cudnnBackendFinalize(pack));
    cudnnCheck(cudnnSetStream(cudnn_ctx.handle, stream));
    cudnnCheck(cudnnBackendExecute(cudnn_ctx.handle, p->plan, pack));
    cudnnBackendDestroyDescriptor(pack);
}

// the fp32 tensors, too, must meet the 16 bytes every tensor is declared with
static inline void cudnn_check_f32_aligned(const char *who, const float *a, const float *b) {
    if (((uintptr_t)a | (uintptr_t)b) % 16 != 0) fatal("%s: lse and D must be 16-byte aligned", who);
}

static inline void attention_forward_cudnn(floatX *out, float *lse, const floatX *qkv, int B, int T, int C, int NH,
                                           cudaStream_t stream) {
    attention_check_args("attention_forward_cudnn", 1, B, T, C, NH, out, qkv, qkv, qkv);
    cudnn_check_f32_aligned("attention_forward_cudnn", lse, lse);
    attention_cudnn_init();
    const int HS = C / NH;
    const CudnnPlan *p = cudnn_plan_for(B, T, NH, HS, 0);
    float scale = 1.0f / sqrtf((float)HS), neg_inf = -INFINITY;
    const floatX *q = qkv, *k = qkv + C, *v = qkv + 2 * C;
    int64_t uids[] = {CUDNN_UID_Q, CUDNN_UID_K, CUDNN_UID_V, CUDNN_UID_O, CUDNN_UID_LSE, CUDNN_UID_SCALE, CUDNN_UID_NEG_INF};
    void *pointers[] = {(void *)q, (void *)k, (void *)v, out, lse, &scale, &neg_inf};
    cudnn_execute(p, 7, uids, pointers, cudnn_workspace((size_t)p->workspace), stream);
}

// scratch_D (B,NH,T) receives D = rowsum(dout * out), as with our kernels
static inline void attention_backward_cudnn(floatX *dqkv, float *scratch_D, const floatX *dout, const floatX *qkv,
                                            const floatX *out, const float *lse, int B, int T, int C, int NH,
                                            cudaStream_t stream) {
    attention_check_args("attention_backward_cudnn", 1, B, T, C, NH, dqkv, dout, qkv, out);
    cudnn_check_f32_aligned("attention_backward_cudnn", lse, scratch_D);
    attention_cudnn_init();
    const int HS = C / NH;
    const CudnnPlan *p = cudnn_plan_for(B, T, NH, HS, 1);
    size_t plan_bytes = ((size_t)p->workspace + 255) / 256 * 256, accum_bytes = (size_t)B * T * C * sizeof(float);
    char *workspace = (char *)cudnn_workspace(plan_bytes + accum_bytes);
    float scale = 1.0f / sqrtf((float)HS), neg_inf = -INFINITY, one = 1.0f;
    int64_t uids[] = {CUDNN_UID_Q,  CUDNN_UID_K,  CUDNN_UID_V,  CUDNN_UID_O,     CUDNN_UID_DO,
                      CUDNN_UID_LSE, CUDNN_UID_DQ, CUDNN_UID_DK, CUDNN_UID_DV,   CUDNN_UID_SCALE,
                      CUDNN_UID_NEG_INF, CUDNN_UID_ONE, CUDNN_UID_D, CUDNN_UID_DQ_ACCUM};
    void *pointers[] = {(void *)qkv, (void *)(qkv + C), (void *)(qkv + 2 * C), (void *)out, (void *)dout,
                        (void *)lse, dqkv, dqkv + C, dqkv + 2 * C, &scale, &neg_inf, &one, scratch_D,
                        workspace + plan_bytes};
    // dQ's engines add into the accumulator with atomics and do not promise to
    // clear it first (cudnn-frontend zeroes it before every run): it still
    // holds the previous layer's dQ
    cudaCheck(cudaMemsetAsync(workspace + plan_bytes, 0, accum_bytes, stream));
    cudnn_execute(p, 14, uids, pointers, workspace, stream);
}
#endif  // CUDNN_GRAPHS_ONLY

#endif  // LLMC_ATTENTION_CUDNN_CUH

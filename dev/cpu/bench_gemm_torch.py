"""dev/cpu/bench_gemm_torch.py: PyTorch's CPU matmul, timed for dev/cpu/bench_gemm.c.

Usage: bench_gemm_torch.py THREADS, then one request per line on stdin:
    ta tb M N K beta reps
and for each it prints one line: the seconds of each of `reps` timed runs
(after one warm-up). Same semantics as llmc/gemm.h: C(M,N) = beta*C +
op(A) @ op(B), op(A) = A (M,K) or A^T (A stored K,M), op(B) = B (K,N) or B^T.
It serves requests so that bench_gemm can alternate with it shape by shape:
both then see the same load on a shared machine.
"""
import sys
import time

import torch


def main():
    torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    cache = {}
    print("ready", flush=True)
    for line in sys.stdin:
        ta, tb, M, N, K, beta, reps = (int(x) for x in line.split())
        key = (ta, tb, M, N, K)
        if key not in cache:
            cache.clear()  # requests come shape by shape; keep one shape's tensors
            a = torch.randn(K, M) if ta else torch.randn(M, K)
            b = torch.randn(N, K) if tb else torch.randn(K, N)
            cache[key] = (a.t() if ta else a, b.t() if tb else b, torch.randn(M, N))
        opa, opb, c = cache[key]
        if beta == 0:
            def run():
                torch.matmul(opa, opb, out=c)
        else:
            def run():
                c.addmm_(opa, opb, beta=beta)
        run()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        print(" ".join(f"{t:.9f}" for t in times), flush=True)


if __name__ == "__main__":
    main()

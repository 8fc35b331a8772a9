"""Copies a state file (llmc/checkpoint.h) with one AdamW first moment near
FLT_MAX and its second moment 0, checksummed anew, for tests: the next update
moves that weight by about lr / eps * 3e38, past what fp32 or bf16 can hold.

usage: huge_moment.py IN OUT INDEX
"""
import sys
import zlib

import numpy as np

src, out, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
header = np.frombuffer(data[:1024], np.int32).copy()
moments = np.frombuffer(data[1024:], np.float32).copy()  # m (n,) then v (n,)
moments[index] = 3e38
moments[len(moments) // 2 + index] = 0
unsummed = header.copy()
unsummed[8] = 0  # the checksum covers the header with its own slot zeroed
header[8] = np.uint32(zlib.crc32(moments.tobytes(), zlib.crc32(unsummed.tobytes()))).view(np.int32)
open(out, "wb").write(header.tobytes() + moments.tobytes())

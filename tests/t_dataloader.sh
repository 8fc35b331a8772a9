# tests/t_dataloader.sh: llmc/dataloader.h (order, shuffling, ranks, resume,
# 64-bit offsets) via tests/test_dataloader.c; its bad-input cases (empty glob,
# short shard, corrupt header) are in t_train.sh, through the trainer.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
make -s build/test_dataloader >/dev/null || { fail build "make build/test_dataloader"; exit 1; }
build/test_dataloader "$TMP" > "$TMP/out.txt" 2>&1
rc=$?
sed -n 's/^ok   \(.*\)/PASS dataloader: \1/p; s/^FAIL \(.*\)/FAIL dataloader: \1: see below/p' "$TMP/out.txt"
[ $rc -eq 0 ] || { cat "$TMP/out.txt"; exit 1; }

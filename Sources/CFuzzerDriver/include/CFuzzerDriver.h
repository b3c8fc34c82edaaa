#ifndef WSGATE_FUZZER_DRIVER_H
#define WSGATE_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

typedef int (*wsgate_fuzz_callback)(const uint8_t *data, size_t size);

/// Runs libFuzzer's driver when the binary was linked with it (scripts/fuzz.sh); returns -1 otherwise.
int wsgate_run_fuzzer(int *argc, char ***argv, wsgate_fuzz_callback callback);

#endif

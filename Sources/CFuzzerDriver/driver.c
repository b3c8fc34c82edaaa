#include "CFuzzerDriver.h"

// Weak: present only when libFuzzer (libclang_rt.fuzzer_no_main) is linked in.
extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t)) __attribute__((weak));

int wsgate_run_fuzzer(int *argc, char ***argv, wsgate_fuzz_callback callback) {
    if (!LLVMFuzzerRunDriver) return -1;
    return LLVMFuzzerRunDriver(argc, argv, callback);
}

/* Header only: libFuzzer itself comes from the toolchain (-sanitize=fuzzer). */
#include "CLibFuzzer.h"

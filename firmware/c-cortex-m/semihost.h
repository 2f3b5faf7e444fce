/* Arm semihosting (QEMU: -semihosting-config enable=on,target=native): console output and exit. */
#ifndef RUNNEL_C_FW_SEMIHOST_H
#define RUNNEL_C_FW_SEMIHOST_H

#include <stdint.h>

#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline uint32_t semihost_call(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Writes a NUL-terminated string to the host's stdout. */
static inline void semihost_write0(const char *s) { semihost_call(SYS_WRITE0, s); }

/* Ends the program: QEMU exits with `code`. */
static inline __attribute__((noreturn)) void semihost_exit(int32_t code) {
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    for (;;) semihost_call(SYS_EXIT_EXTENDED, block);
}

#endif

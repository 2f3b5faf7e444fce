/* Minimal Cortex-M4F startup for QEMU mps2-an386: vector table, reset handler (FPU on, .data
 * copied, .bss zeroed, main called, its return value passed to semihosting exit) and fault
 * handlers that report and exit. */
#include <stdint.h>

#include "semihost.h"

/* Exit status after a fault: the same as the Rust firmware's. A panic in the library (which
 * cannot happen by construction) executes `udf`, so it also ends here. */
#define EXIT_HARDFAULT 102

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void);
void HardFault_Handler(void);
void Default_Handler(void);

__attribute__((noreturn)) void Reset_Handler(void) {
    /* CPACR: full access to CP10 and CP11 (the FPU), before any floating-point instruction. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;

    semihost_exit(main());
}

void HardFault_Handler(void) {
    semihost_write0("HardFault\n");
    semihost_exit(EXIT_HARDFAULT);
}

void Default_Handler(void) {
    semihost_write0("unexpected exception\n");
    semihost_exit(EXIT_HARDFAULT);
}

typedef void (*vector)(void);

__attribute__((section(".isr_vector"), used)) static const vector vectors[16] = {
    (vector)(uintptr_t)&_estack, /* initial MSP */
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler, /* HardFault */
    Default_Handler,   /* MemManage */
    Default_Handler,   /* BusFault */
    Default_Handler,   /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};

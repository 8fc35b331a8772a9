// dev/emu/emu_context.h: context switches between fibers (our own on x86-64,
// else ucontext).
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_CONTEXT_H
#define EMU_CONTEXT_H

namespace emu {

// ----------------------------------------------------------------------------
// context switches
//
// On x86-64 our own: a few instructions and no system call (glibc's
// swapcontext saves and restores the signal mask with a sigprocmask call at
// every switch: three quarters of an emulated trainer's time went there).
// emu_context_switch pushes the callee-saved registers (the SysV ABI's rbp,
// rbx, r12-r15) and the SSE and x87 control words on the stack it leaves,
// stores that stack pointer in *save_sp, and pops the same from load_sp's
// stack; a new context's stack is laid out as if it had been left that way,
// with its entry function as the return address. Elsewhere, or built with
// -DEMU_UCONTEXT: ucontext. (.weak: the header is in every unit of a program.)
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
extern "C" void emu_context_switch(void** save_sp, void* load_sp);
asm(R"(
    .pushsection .text
    .weak emu_context_switch
    .type emu_context_switch, @function
emu_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_context_switch, .-emu_context_switch
    .popsection
)");

struct Context { void* sp = nullptr; };

inline void context_switch(Context& save, const Context& load) { emu_context_switch(&save.sp, load.sp); }

// c: entry() on the stack [stack, stack + size), with the caller's control words
inline void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
    // entry is "returned" into from x (16-byte aligned), so that it starts
    // with the stack as after a call (rsp = 8 mod 16), over a null return address
    uintptr_t x = ((uintptr_t)stack + size - 16) & ~(uintptr_t)15;
    uint64_t* sp = (uint64_t*)x;
    sp[1] = 0;
    sp[0] = (uint64_t)(uintptr_t)entry;
    sp -= 7;   // rbp, rbx, r12..r15: zero; then the control words
    memset(sp, 0, 7 * sizeof *sp);
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    memcpy((char*)sp, &mxcsr, 4);
    memcpy((char*)sp + 4, &fpucw, 2);
    c.sp = sp;
}
#else
struct Context { ucontext_t uc; };

inline void context_switch(Context& save, const Context& load) { swapcontext(&save.uc, &load.uc); }

inline void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif

} // namespace emu

#endif // EMU_CONTEXT_H

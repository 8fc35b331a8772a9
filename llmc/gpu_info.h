/*
 * gpu_info.h: what the GPU is doing, for -lg (llm.c's flag): utilization,
 * SM clock, power, temperature, and what holds the clocks down, read from
 * NVML (the driver's libnvidia-ml.so.1). NVML is loaded at run time, so
 * building needs none of it and a machine without it (or the CUDA
 * emulation) gets "n/a" and the reason, never an error.
 *
 * NVML's C ABI, as far as used here: functions return 0 on success; a
 * device is an opaque pointer; utilization is {gpu, memory} percent; clock
 * type 1 is the SM clock, temperature sensor 0 the GPU's; powers are in mW;
 * the throttle reasons a bit mask (nvml.h's nvmlClocksThrottleReason*).
 */
#ifndef LLMC_GPU_INFO_H
#define LLMC_GPU_INFO_H

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef struct NvmlDeviceOpaque *NvmlDevice;
typedef struct {
    unsigned int gpu, memory;  // percent of the last sample period busy
} NvmlUtilization;

#define NVML_CLOCK_SM 1
#define NVML_TEMPERATURE_GPU 0

static struct {
    int opened;          // 1: ready; -1: failed (reason in error)
    char error[192];
    NvmlDevice device;
    int (*utilization)(NvmlDevice, NvmlUtilization *);
    int (*clock)(NvmlDevice, int, unsigned int *);
    int (*max_clock)(NvmlDevice, int, unsigned int *);
    int (*power)(NvmlDevice, unsigned int *);
    int (*power_limit)(NvmlDevice, unsigned int *);
    int (*temperature)(NvmlDevice, int, unsigned int *);
    int (*throttle)(NvmlDevice, unsigned long long *);
} gpu_nvml;

// Opens NVML for the GPU at PCI bus id `bus_id` (as cudaDeviceGetPCIBusId
// writes it; NULL: no GPU to ask about, with `why`). Once; 1 if ready.
static inline int gpu_info_open(const char *bus_id, const char *why) {
    if (gpu_nvml.opened) return gpu_nvml.opened == 1;
    gpu_nvml.opened = -1;
    if (!bus_id) {
        snprintf(gpu_nvml.error, sizeof(gpu_nvml.error), "%s", why);
        return 0;
    }
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(gpu_nvml.error, sizeof(gpu_nvml.error), "no NVML: %s", dlerror());
        return 0;
    }
    typedef int (*Init)(void);
    typedef int (*ByBus)(const char *, NvmlDevice *);
    typedef int (*Utilization)(NvmlDevice, NvmlUtilization *);
    typedef int (*Uint)(NvmlDevice, unsigned int *);
    typedef int (*TypedUint)(NvmlDevice, int, unsigned int *);
    typedef int (*Mask)(NvmlDevice, unsigned long long *);
    Init init = (Init)dlsym(lib, "nvmlInit_v2");
    ByBus by_bus = (ByBus)dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    gpu_nvml.utilization = (Utilization)dlsym(lib, "nvmlDeviceGetUtilizationRates");
    gpu_nvml.clock = (TypedUint)dlsym(lib, "nvmlDeviceGetClockInfo");
    gpu_nvml.max_clock = (TypedUint)dlsym(lib, "nvmlDeviceGetMaxClockInfo");
    gpu_nvml.power = (Uint)dlsym(lib, "nvmlDeviceGetPowerUsage");
    gpu_nvml.power_limit = (Uint)dlsym(lib, "nvmlDeviceGetEnforcedPowerLimit");
    gpu_nvml.temperature = (TypedUint)dlsym(lib, "nvmlDeviceGetTemperature");
    gpu_nvml.throttle = (Mask)dlsym(lib, "nvmlDeviceGetCurrentClocksThrottleReasons");
    if (!init || !by_bus || !gpu_nvml.utilization || !gpu_nvml.clock || !gpu_nvml.max_clock || !gpu_nvml.power ||
        !gpu_nvml.power_limit || !gpu_nvml.temperature || !gpu_nvml.throttle) {
        snprintf(gpu_nvml.error, sizeof(gpu_nvml.error), "NVML lacks a function this needs");
        return 0;
    }
    int r = init();
    if (r == 0) r = by_bus(bus_id, &gpu_nvml.device);
    if (r != 0) {
        snprintf(gpu_nvml.error, sizeof(gpu_nvml.error), "NVML error %d for the GPU at %s", r, bus_id);
        return 0;
    }
    gpu_nvml.opened = 1;
    return 1;
}

// The names of the reasons in NVML's throttle mask, ", "-separated
static inline void gpu_info_throttle_names(unsigned long long mask, char *out, size_t size) {
    static const struct {
        unsigned long long bit;
        const char *name;
    } reasons[] = {{0x1, "idle"},        {0x2, "application clocks"}, {0x4, "power cap"},
                   {0x8, "hardware slowdown"}, {0x10, "sync boost"}, {0x20, "software thermal"},
                   {0x40, "hardware thermal"}, {0x80, "power brake"}, {0x100, "display clocks"}};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (!(mask & reasons[i].bit)) continue;
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used ? ", " : "", reasons[i].name);
    }
    if (!out[0]) snprintf(out, size, "nothing");
}

// One line on the GPU now, after gpu_info_open: "gpu: 97% busy (memory
// 41%), SM 1755/1980 MHz, 652/700 W, 63 C, clocks held by: power cap"
static inline void gpu_info_line(char *out, size_t size) {
    if (gpu_nvml.opened != 1) {
        snprintf(out, size, "gpu: n/a (%s)", gpu_nvml.error);
        return;
    }
    NvmlUtilization u = {0, 0};
    unsigned int sm = 0, sm_max = 0, mw = 0, mw_limit = 0, temp = 0;
    unsigned long long mask = 0;
    NvmlDevice d = gpu_nvml.device;
    int failed = gpu_nvml.utilization(d, &u) | gpu_nvml.clock(d, NVML_CLOCK_SM, &sm) |
                 gpu_nvml.max_clock(d, NVML_CLOCK_SM, &sm_max) | gpu_nvml.power(d, &mw) |
                 gpu_nvml.power_limit(d, &mw_limit) | gpu_nvml.temperature(d, NVML_TEMPERATURE_GPU, &temp) |
                 gpu_nvml.throttle(d, &mask);
    char held[160];
    gpu_info_throttle_names(mask, held, sizeof(held));
    snprintf(out, size, "gpu: %u%% busy (memory %u%%), SM %u/%u MHz, %u/%u W, %u C, clocks held by: %s%s", u.gpu,
             u.memory, sm, sm_max, mw / 1000, mw_limit / 1000, temp, held, failed ? " (some readings failed)" : "");
}

#endif  // LLMC_GPU_INFO_H

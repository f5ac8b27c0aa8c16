/* acma_pages: a QEMU TCG plugin (plugin API version 1, QEMU 7.2 and later) that records which
 * 4 KiB pages a program touches in each window of guest instructions.
 *
 * Part of acma (GPL-2.0). acma builds it on first use:
 *     gcc -O2 -shared -fPIC -fvisibility=hidden -o acma_pages.so acma_pages.c
 * and runs it under qemu-user:
 *     qemu-x86_64 -plugin acma_pages.so,out=PAGES,stats=STATS,win=100000,code=1 PROGRAM ARGS...
 *
 * Output (PAGES): for every window of `win` instructions in which something was touched,
 *     u64 first instruction count of the window, u32 n, n x u64 (page << 2 | exec << 1 | write)
 * little endian, the n distinct pages in the order they were first touched in the window. A page
 * that was both written and fetched carries both bits. This is the "window record" format of
 * docs/trace-format.md, read by acma.workloads.trace.TraceEvents.from_window_records.
 * Summary (STATS): `key=value` lines written at exit, read by acma.tracing.plugin_output.
 *
 * Threads: the tables below are not shared safely between vCPUs. In qemu-user every guest
 * thread is its own vCPU, so when a second vCPU starts the plugin stops recording, notes the
 * instruction count in `thread_at`, and acma refuses the trace. A forked child inherits the
 * plugin; it writes nothing (its pid differs from the recorder's), and the parent counts forks.
 *
 * QEMU's plugin header (qemu-plugin.h, GPL-2.0-or-later) is not packaged by Debian, so the few
 * API v1 entry points used here are declared below from their documented signatures. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACMA_EXPORT __attribute__((visibility("default")))

/* ---- the QEMU plugin API v1 entry points this plugin calls */
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct { const char *target_name; struct { int min, cur; } version; bool system_emulation; } qemu_info_t;
enum { CB_NO_REGS = 0 };
enum { MEM_RW = 3 };
enum { INLINE_ADD_U64 = 0 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*vcpu_udata_cb)(unsigned int, void *);
typedef void (*vcpu_simple_cb)(qemu_plugin_id_t, unsigned int);
typedef void (*vcpu_mem_cb)(unsigned int, qemu_plugin_meminfo_t, uint64_t, void *);
typedef void (*vcpu_syscall_cb)(qemu_plugin_id_t, unsigned int, int64_t, uint64_t, uint64_t, uint64_t,
                                uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, vcpu_udata_cb, int, void *);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, int, void *, uint64_t);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *, vcpu_mem_cb, int, int, void *);
void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t, vcpu_simple_cb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t, vcpu_syscall_cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb, void *);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t);

ACMA_EXPORT int qemu_plugin_version = 1;

#define FLAG_WRITE 1u
#define FLAG_EXEC 2u
#define SYS_CLONE 56     /* x86_64 syscall numbers */
#define SYS_FORK 57
#define SYS_VFORK 58
#define SYS_CLONE3 435
#define CLONE_THREAD_FLAG 0x10000u

/* ---- state: one open-addressing table of the current window's pages */
static uint64_t icount;                 /* instructions executed (inline counter, per TB) */
static uint64_t window = 100000;        /* instructions per window */
static uint64_t window_start;           /* first instruction count of the current window */
static uint64_t *keys;                  /* page + 1, 0 = empty slot */
static uint8_t *flags;
static uint32_t *order;                 /* slots in first-touch order */
static size_t capacity = 1u << 14, used;
static uint64_t *outbuf;
static uint64_t last_page = ~0ull;      /* skips the table for repeated touches of one page */
static uint8_t last_flags;
static FILE *pages_out;
static char *stats_path;
static pid_t owner;
static volatile int stopped;            /* a second vCPU appeared: record nothing more */
static unsigned vcpus;
static uint64_t accesses, windows_written, page_events, bytes_written;
static uint64_t forks, threads, clone3s, thread_at;
static int write_error;
static int record_code = 1;             /* code=0: data accesses only */

static void table_alloc(size_t cap)
{
    keys = calloc(cap, sizeof *keys);
    flags = calloc(cap, 1);
    order = malloc(cap * sizeof *order);
    if (!keys || !flags || !order) {
        fprintf(stderr, "acma_pages: out of memory for %zu pages\n", cap);
        abort();
    }
}

static void insert(uint64_t page, uint8_t f);

static void grow(void)
{
    uint64_t *old_keys = keys;
    uint8_t *old_flags = flags;
    uint32_t *old_order = order;
    size_t old_used = used;
    capacity *= 2;
    table_alloc(capacity);
    used = 0;
    for (size_t i = 0; i < old_used; i++)   /* keep the first-touch order */
        insert(old_keys[old_order[i]] - 1, old_flags[old_order[i]]);
    free(old_keys);
    free(old_flags);
    free(old_order);
}

static void insert(uint64_t page, uint8_t f)
{
    size_t mask = capacity - 1;
    size_t h = (size_t)((page * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (keys[h]) {
        if (keys[h] == page + 1) {
            flags[h] |= f;
            return;
        }
        h = (h + 1) & mask;
    }
    keys[h] = page + 1;
    flags[h] = f;
    order[used++] = (uint32_t)h;
    if (used * 2 > capacity)
        grow();
}

/* Write the current window's pages (if any) and start the window holding `icount`. */
static void flush_window(void)
{
    if (used && getpid() == owner) {
        uint32_t n = (uint32_t)used;
        outbuf = realloc(outbuf, used * sizeof *outbuf);
        for (size_t i = 0; i < used; i++)
            outbuf[i] = (keys[order[i]] - 1) << 2 | flags[order[i]];
        if (fwrite(&window_start, 8, 1, pages_out) != 1 || fwrite(&n, 4, 1, pages_out) != 1 ||
            fwrite(outbuf, 8, used, pages_out) != used)
            write_error = 1;
        windows_written++;
        page_events += n;
        bytes_written += 12 + 8ull * n;
    }
    for (size_t i = 0; i < used; i++)
        keys[order[i]] = 0;
    used = 0;
    last_page = ~0ull;
    window_start = icount - icount % window;
}

static void touch(uint64_t page, uint8_t f)
{
    if (icount - window_start >= window)
        flush_window();
    if (page == last_page && (last_flags | f) == last_flags)
        return;
    if (page == last_page) {
        last_flags |= f;
    } else {
        last_page = page;
        last_flags = f;
    }
    insert(page, f);
}

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)vcpu; (void)udata;
    if (stopped)
        return;
    accesses++;
    touch(vaddr >> 12, qemu_plugin_mem_is_store(info) ? FLAG_WRITE : 0);
}

/* A TB's code pages: udata packs the first page and how many more pages the TB spans. */
static void on_tb(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    if (stopped)
        return;
    uint64_t packed = (uint64_t)(uintptr_t)udata;
    uint64_t first = packed >> 2;
    for (uint64_t p = 0; p <= (packed & 3); p++)
        touch(first + p, FLAG_EXEC);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, INLINE_ADD_U64, &icount, n);
    uint64_t first = qemu_plugin_tb_vaddr(tb) >> 12;
    struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
    uint64_t end = (qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last) - 1) >> 12;
    uint64_t extra = end > first ? (end - first > 3 ? 3 : end - first) : 0;
    if (record_code)
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb, CB_NO_REGS, (void *)(uintptr_t)(first << 2 | extra));
    for (size_t i = 0; i < n; i++)
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_mem, CB_NO_REGS, MEM_RW, NULL);
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu)
{
    (void)id; (void)vcpu;
    if (++vcpus > 1 && !stopped) {
        stopped = 1;
        thread_at = icount;
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (getpid() != owner)
        return;
    if (num == SYS_FORK || num == SYS_VFORK)
        forks++;
    else if (num == SYS_CLONE)
        (a1 & CLONE_THREAD_FLAG) ? threads++ : forks++;
    else if (num == SYS_CLONE3)
        clone3s++;
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
    (void)id; (void)udata;
    if (getpid() != owner)
        return;
    if (!stopped)
        flush_window();
    if (fclose(pages_out))
        write_error = 1;
    FILE *s = fopen(stats_path, "w");
    if (!s)
        return;
    fprintf(s, "format=acma_pages 1\ninstructions=%llu\naccesses=%llu\nwindow=%llu\nwindows=%llu\n"
               "page_events=%llu\nbytes=%llu\nvcpus=%u\nthread_at=%llu\nthreads=%llu\nforks=%llu\n"
               "clone3=%llu\nwrite_error=%d\n",
            (unsigned long long)icount, (unsigned long long)accesses, (unsigned long long)window,
            (unsigned long long)windows_written, (unsigned long long)page_events,
            (unsigned long long)bytes_written, vcpus, (unsigned long long)thread_at,
            (unsigned long long)threads, (unsigned long long)forks, (unsigned long long)clone3s,
            write_error);
    fclose(s);
}

ACMA_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    const char *out = NULL;
    if (info->system_emulation) {
        fprintf(stderr, "acma_pages: for qemu-user only (virtual addresses of one process)\n");
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "win=", 4))
            window = strtoull(argv[i] + 4, NULL, 10);
        else if (!strncmp(argv[i], "out=", 4))
            out = argv[i] + 4;
        else if (!strncmp(argv[i], "stats=", 6))
            stats_path = strdup(argv[i] + 6);
        else if (!strncmp(argv[i], "code=", 5))
            record_code = atoi(argv[i] + 5);
        else {
            fprintf(stderr, "acma_pages: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!out || !stats_path || window == 0) {
        fprintf(stderr, "acma_pages: needs out=FILE, stats=FILE and win=N > 0\n");
        return -1;
    }
    if (!(pages_out = fopen(out, "wb"))) {
        perror("acma_pages: out");
        return -1;
    }
    setvbuf(pages_out, NULL, _IOFBF, 1 << 20);
    table_alloc(capacity);
    owner = getpid();
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}

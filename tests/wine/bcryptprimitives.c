/* bcryptprimitives.dll for Wine 8 (Debian 12), which lacks it: Rust's standard
 * library takes its random numbers from ProcessPrng there. Built and installed
 * into the Wine prefix by `just wine`; never shipped. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

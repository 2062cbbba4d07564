/*
 * A bcryptprimitives.dll for the Wine of Debian 12 (wine64 8.0), which has none: Rust's standard
 * library (since 1.78) imports ProcessPrng from it for its random seeds, so no Rust program for
 * Windows starts under that Wine. Test-only: scripts/test-windows.sh builds it with mingw-w64
 * and puts it in its throwaway Wine prefix; it is never shipped (Windows 10 and later have the
 * real one). ProcessPrng fills the buffer from RtlGenRandom (advapi32!SystemFunction036), which
 * Wine implements, and like the real one never reports a failure it could not recover from.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

/*
 * bcryptprimitives.dll for Wine 8, which lacks it: Go 1.24 and later fill
 * their random source through ProcessPrng and refuse to start without it.
 * RtlGenRandom (advapi32's SystemFunction036) gives the same bytes from the
 * system's generator. Test setup only; real Windows has its own.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) {
		ULONG n = length > 0x40000000 ? 0x40000000 : (ULONG)length;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		length -= n;
	}
	return TRUE;
}

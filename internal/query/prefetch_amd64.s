#include "textflag.h"

// func prefetchEntries(base unsafe.Pointer, homes []uint32)
TEXT ·prefetchEntries(SB), NOSPLIT, $0-32
	MOVQ base+0(FP), AX
	MOVQ homes_base+8(FP), BX
	MOVQ homes_len+16(FP), CX
	TESTQ CX, CX
	JEQ done
loop:
	MOVL (BX), DX
	IMULQ $48, DX
	PREFETCHT0 (AX)(DX*1)
	ADDQ $4, BX
	DECQ CX
	JNE loop
done:
	RET

"""A software prefetch for compiled kernels: ``prefetch(a, i)`` asks the memory system to
start loading ``a[i]`` now, so that random reads a loop will make a few rows later overlap
instead of waiting one after another. A hint: it never faults, reads nothing, changes no
result (an index outside the array is harmless)."""
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["prefetch"]


@intrinsic
def prefetch(typingctx, arr, idx):
    """``llvm.prefetch`` of the address of ``arr[idx]`` (a 1-d contiguous array, an integer
    index; no bounds check: nothing is read)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and
            isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        i8p = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()
    return types.void(arr, idx), codegen

"""A bounded run of the seeded codec fuzzer (serving/fuzz.py), and the crashes it found, pinned."""

import grpc
import pytest
from tensorflow.core.framework import types_pb2

from serving import fuzz, json_codec
from serving.errors import ServingError


def test_bounded_fuzz_run_finds_no_crash():
    crashes = fuzz.fuzz(iterations=1500, seed=20)
    assert crashes == [], "\n".join(crashes[:5])


# Found by the fuzzer (seed 0, case 1069): a huge JSON integer into a bfloat16 input raised TypeError (500).
@pytest.mark.parametrize("dtype", [types_pb2.DT_BFLOAT16, types_pb2.DT_FLOAT])
def test_huge_integer_into_a_float_input_is_converted(dtype):
    assert float(json_codec.json_to_array([[10 ** 30]], dtype)[0, 0]) == pytest.approx(1e30, rel=1e-2)


@pytest.mark.parametrize("value, dtype", [(10 ** 30, types_pb2.DT_HALF), (10 ** 400, types_pb2.DT_BFLOAT16),
                                          (10 ** 400, types_pb2.DT_DOUBLE)])
def test_integer_beyond_a_float_type_is_a_type_error(value, dtype):
    with pytest.raises(ServingError) as error:
        json_codec.json_to_array([value], dtype)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT

#pragma once
/// qcodec: weight quantization codecs for inference engines. One include for everything.

#include "qcodec/config.hpp"
#include "qcodec/core/error.hpp"
#include "qcodec/core/matrix.hpp"
#include "qcodec/core/half.hpp"
#include "qcodec/core/bit_packing.hpp"
#include "qcodec/core/clipping.hpp"
#include "qcodec/core/fidelity.hpp"
#include "qcodec/codecs/codec.hpp"
#include "qcodec/codecs/linear.hpp"
#include "qcodec/codecs/qins.hpp"
#include "qcodec/codecs/grid.hpp"
#include "qcodec/codecs/ortho_stream.hpp"
#include "qcodec/codecs/outlier_split.hpp"
#include "qcodec/codecs/codec_list.hpp"
#include "qcodec/codecs/encode_validated.hpp"
#include "qcodec/ops/dual_stream_linear.hpp"

// int8 quantization: tensors (quantizeTensor, dequantize, fakeQuantize), layers (QuantizedLinear,
// QatLinear), whole models (quantize, prepareQat, convertQat), observers and int8 model files.
export { quantizeTensor, dequantize, fakeQuantize, symmetricScale } from './tensor';
export type { QuantizeTensorOptions, QuantizedTensor, QDType } from './tensor';
export { MinMaxObserver, PercentileObserver } from './observers';
export type { Observer } from './observers';
export { QuantizedLinear, QatLinear, QuantizedSequential } from './modules';
export type { QuantizedLinearOptions, QatOptions } from './modules';
export { quantize, prepareQat, convertQat, cloneModule, modelBytes } from './model';
export type { QuantizeOptions, Calibration } from './model';
export { saveQuantized, loadQuantized, QUANT_FORMAT } from './io';
export { int8Matmul, int8MatmulReference, kernelName } from './kernels';

// Files: safetensors (checkpoints, weights shared with PyTorch and Hugging Face tools).
export * as safetensors from './safetensors';
export { save as saveSafetensors, load as loadSafetensors, writeFileAtomic } from './safetensors';
export type { Loaded, LoadOptions, SafetensorsHeader, TensorInfo, SafetensorsDType } from './safetensors';

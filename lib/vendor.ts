// Vendor libraries that Joule opens at run time (never at load): whether this machine can load
// them, and what to install when it cannot.
import { native } from './native';

const LIBRARIES = {
  nccl: { soname: 'libnccl.so.2', install: 'NVIDIA NCCL (libnccl2 from NVIDIA\'s repository, or the nvidia-nccl-cu12 wheel on LD_LIBRARY_PATH)' },
  nvml: { soname: 'libnvidia-ml.so.1', install: 'the NVIDIA driver (it ships NVML)' },
} as const;

export function probeLibrary(name: keyof typeof LIBRARIES): { available: boolean; detail: string } {
  const lib = LIBRARIES[name];
  const error = native.libraryLoadError(lib.soname);
  if (error === '') return { available: true, detail: `${lib.soname} loads` };
  return { available: false, detail: `${lib.soname} cannot be loaded (${error}); install ${lib.install}` };
}

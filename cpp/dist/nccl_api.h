// The part of NCCL's C API that Joule uses, declared from NCCL's documented ABI (nccl.h), so
// that Joule compiles without NCCL installed; the library is opened with dlopen at first use.
// Likewise the few CUDA driver calls the NCCL group needs (cuda.h), from libcuda.so.1.
#pragma once
#include <cstddef>

extern "C" {

typedef struct ncclComm* ncclComm_t;
#define JOULE_NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[JOULE_NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
} ncclResult_t;

typedef enum {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
} ncclDataType_t;

typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;

typedef struct CUstream_st* cudaStream_t;

typedef ncclResult_t (*ncclGetUniqueId_t)(ncclUniqueId* uniqueId);
typedef ncclResult_t (*ncclCommInitRank_t)(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
typedef ncclResult_t (*ncclAllReduce_t)(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                        ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
typedef ncclResult_t (*ncclBroadcast_t)(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                        int root, ncclComm_t comm, cudaStream_t stream);
typedef ncclResult_t (*ncclAllGather_t)(const void* sendbuff, void* recvbuff, size_t sendcount,
                                        ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);
typedef ncclResult_t (*ncclReduceScatter_t)(const void* sendbuff, void* recvbuff, size_t recvcount,
                                            ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                            cudaStream_t stream);
typedef ncclResult_t (*ncclCommDestroy_t)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommAbort_t)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommGetAsyncError_t)(ncclComm_t comm, ncclResult_t* asyncError);
typedef const char* (*ncclGetErrorString_t)(ncclResult_t result);

// CUDA driver API (cuda.h).
typedef int CUresult;  // CUDA_SUCCESS = 0, CUDA_ERROR_NOT_READY = 600
typedef int CUdevice;
typedef struct CUctx_st* CUcontext;
typedef struct CUstream_st* CUstream;
typedef CUresult (*cuInit_t)(unsigned int flags);
typedef CUresult (*cuDeviceGet_t)(CUdevice* device, int ordinal);
typedef CUresult (*cuDevicePrimaryCtxRetain_t)(CUcontext* pctx, CUdevice dev);
typedef CUresult (*cuCtxSetCurrent_t)(CUcontext ctx);
typedef CUresult (*cuStreamQuery_t)(CUstream stream);
}

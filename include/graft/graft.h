/* graft/graft.h — the one header a user includes. */
#ifndef GRAFT_GRAFT_H
#define GRAFT_GRAFT_H
#include "graft/status.h"
#include "graft/rng.h"
#include "graft/tensor.h"
#include "graft/ops.h"
#include "graft/safetensors.h"
#include "graft/checkpoint.h"
#include "graft/peft_io.h"
#include "graft/peft.h"
#include "graft/merge.h"
#include "graft/atlas.h"
#include "graft/data.h"
#include "graft/nn.h"
#include "graft/optim.h"
#include "graft/train.h"
#include "graft/dist.h"
#include "graft/fileio.h"
#include "graft/report.h"
#endif

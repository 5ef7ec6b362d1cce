/* transfer/methods.h — internal: the setup functions of the built-in
 * transfer methods, listed in the registry table (registry.c). */
#ifndef GRAFT_TRANSFER_METHODS_H
#define GRAFT_TRANSFER_METHODS_H
#include "graft/transfer.h"

gr_status gr_method_linear_probe_setup(gr_transfer_run *run);
gr_status gr_method_freeze_early_setup(gr_transfer_run *run);
gr_status gr_method_discriminative_optim(gr_transfer_run *run, gr_optim *o);
gr_status gr_method_lora_setup(gr_transfer_run *run);   /* peft/peft_methods.c */
gr_status gr_method_rslora_setup(gr_transfer_run *run);
gr_status gr_method_dora_setup(gr_transfer_run *run);
gr_status gr_method_ia3_setup(gr_transfer_run *run);
gr_status gr_method_adapter_seq_setup(gr_transfer_run *run);
gr_status gr_method_adapter_par_setup(gr_transfer_run *run);
gr_status gr_method_adapter_scaled_setup(gr_transfer_run *run);
gr_status gr_method_corda_kp_setup(gr_transfer_run *run); /* peft/corda.c */
gr_status gr_method_corda_ip_setup(gr_transfer_run *run);
gr_status gr_method_scalearn_setup(gr_transfer_run *run); /* peft/scalearn_transfer.c */
gr_status gr_method_scalearn_uniform_setup(gr_transfer_run *run);
gr_status gr_method_scalearn_pp_setup(gr_transfer_run *run);
gr_status gr_method_scalearn_uniform_pp_setup(gr_transfer_run *run);

#endif

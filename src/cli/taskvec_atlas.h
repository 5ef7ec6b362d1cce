/* cli/taskvec_atlas.h — `graft taskvec atlas` (cli/taskvec_atlas.c), called
 * by the taskvec verb's subcommand dispatch (cli/taskvec.c). */
#ifndef GRAFT_CLI_TASKVEC_ATLAS_H
#define GRAFT_CLI_TASKVEC_ATLAS_H

#define ATLAS_CLI_MAX_TV 16

/* argv[0] is "atlas"; returns a CLI exit code. */
int taskvec_atlas_main(int argc, char **argv);
#endif

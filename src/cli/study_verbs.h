/* cli/study_verbs.h — the `graft study` subcommands other than the config
 * grid (cli/study.c dispatches): argv[0] is the subcommand name; each returns
 * a CLI exit code. */
#ifndef GRAFT_CLI_STUDY_VERBS_H
#define GRAFT_CLI_STUDY_VERBS_H
int study_merge_main(int argc, char **argv);  /* cli/study_merge.c */
int study_rebase_main(int argc, char **argv); /* cli/study_rebase.c */
#endif

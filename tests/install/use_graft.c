/* A program outside the tree: installed headers + pkg-config link line. */
#include <graft/graft.h>
#include <stdio.h>
int main(void) {
  gr_ctx *c = gr_ctx_new(1 << 16, 1);
  gr_tensor *a = gr_leaf(c, 2, GR_SHAPE(2, 2), (float[]){1, 2, 3, 4});
  gr_tensor *l = gr_sum(c, gr_matmul(c, a, a, false, false), GR_AXIS_ALL, false);
  if (gr_backward(c, l)) { printf("%s\n", gr_last_error()); return 1; }
  printf("loss %g grad %g %g %g %g\n", l->data[0], a->grad[0], a->grad[1], a->grad[2], a->grad[3]);
  gr_ctx_free(c);
  return 0;
}

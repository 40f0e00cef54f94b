/* The reference of platoon-bench's allreduce figures: MPI_Allreduce in place
 * of N floats (sum), each after an MPI_Barrier, as platoon's collective is
 * timed. Run under mpirun; rank 0 prints {"ms": [...]} (one time per timed
 * iteration).
 *
 *   mpirun -np 2 platoon-mpi-allreduce ELEMENTS WARMUP ITERATIONS
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  if (argc != 4) {
    fprintf(stderr, "usage: platoon-mpi-allreduce ELEMENTS WARMUP ITERATIONS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const long n = atol(argv[1]);
  const int warmup = atoi(argv[2]), iterations = atoi(argv[3]);
  if (n < 1 || warmup < 0 || iterations < 1) {
    fprintf(stderr, "platoon-mpi-allreduce: bad arguments\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  float* data = malloc((size_t)n * sizeof(float));
  double* times = malloc((size_t)iterations * sizeof(double));
  if (!data || !times) MPI_Abort(MPI_COMM_WORLD, 3);
  for (long i = 0; i < n; ++i) data[i] = 1e-3f * (float)(rank + 1);
  for (int i = 0; i < warmup + iterations; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    const double t1 = MPI_Wtime();
    if (i >= warmup) times[i - warmup] = (t1 - t0) * 1e3;
  }
  if (rank == 0) {
    printf("{\"ms\": [");
    for (int i = 0; i < iterations; ++i) printf("%s%.6f", i ? ", " : "", times[i]);
    printf("]}\n");
  }
  free(data);
  free(times);
  MPI_Finalize();
  return 0;
}

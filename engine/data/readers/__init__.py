"""The readers behind the importers, one module per kind of file.

Each module has ``open_table(params, base_dir, progress=None) -> SampleTable`` (an index the
streamed path reads from, picklable, files opened lazily in the reading process) and a cheap
``shapes(params, base_dir) -> {'x': shape, 'y': shape}`` that reads only headers or first rows:
``csvfile`` (pandas), ``arrays`` (NPY and NPZ, memory-mapped where possible), ``idx`` (MNIST
format, gz too) and ``images`` (image folders through Pillow). Every problem with a file is a
DataError that names the file and the line, column, field or sample at fault. Importing this
package imports neither pandas, Pillow nor torch.
"""

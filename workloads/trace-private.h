#pragma once

/* Helpers shared by the trace readers and writers (workloads/trace*.c). */

#include <stdio.h>

#include "msim-error.h"
#include "trace.h"

G_BEGIN_DECLS

/* Like msim_trace_new, but the limit error names @name (the file) and, for
 * @mapped, allocates only the struct: the caller points the arrays into the
 * GMappedFile it hands over (transfer full) as storage. */
MsimTrace *msim_trace_alloc (const char *name, gsize tokens, guint layers, guint k, guint experts,
                             MsimTraceFlags flags, GError **error);
MsimTrace *msim_trace_new_mapped (GMappedFile *mapping, gsize tokens, guint layers, guint k,
                                  guint experts, MsimTraceFlags flags);

/* Readers.  @data/@length is the whole file (a mapping or a caller buffer,
 * possibly unaligned); @mapping is the private copy-on-write GMappedFile it
 * came from, or NULL, and lets the native reader point into it instead of
 * copying.  Every reader checks expert ids as it goes and sets E to the
 * stored value (native) or max id + 1. */
MsimTrace *msim_trace_read_npy (const guint8 *data, gsize length, const char *name, GError **error);
MsimTrace *msim_trace_read_csv (const guint8 *data, gsize length, const char *name, GError **error);
MsimTrace *msim_trace_read_json (const guint8 *data, gsize length, const char *name,
                                 GError **error);
MsimTrace *msim_trace_read_native (const guint8 *data, gsize length, GMappedFile *mapping,
                                   const char *name, GError **error);

/*
 * An output file written atomically: a temporary file beside @path that is
 * renamed over it on commit and removed on abort.  Writers fwrite to ->fp
 * and need not check each call: stdio keeps the error flag and commit
 * checks it, so a full disk fails the save without a partial file.
 */
typedef struct
{
  FILE *fp;
  char *path;
  char *tmp_path;
} MsimTraceOut;

MsimTraceOut *msim_trace_out_open (const char *path, GError **error);
/* Flushes, fsyncs, closes and renames; frees @out in every case. */
gboolean msim_trace_out_commit (MsimTraceOut *out, GError **error);
/* Closes and removes the temporary file; frees @out.  NULL is allowed. */
void msim_trace_out_abort (MsimTraceOut *out);
/* Sets the MSIM_ERROR_IO error for a failed stdio call on @out. */
void msim_trace_out_set_error (MsimTraceOut *out, GError **error, const char *what);

gboolean msim_trace_write_npy (const MsimTrace *trace, MsimTraceOut *out, GError **error);
gboolean msim_trace_write_csv (const MsimTrace *trace, MsimTraceOut *out, GError **error);
gboolean msim_trace_write_json (const MsimTrace *trace, MsimTraceOut *out, GError **error);
gboolean msim_trace_write_native (const MsimTrace *trace, MsimTraceOut *out, GError **error);

/*
 * NumPy .npy headers, shared by the trace reader (integer ids) and the
 * router weight loader (float matrices).  msim_npy_parse_header checks the
 * magic, version, header length and the dict, and with @want_float accepts
 * only '<f4' / '<f8' (and big-endian forms), without it only integer
 * dtypes; every error names @name and the byte offset.  The caller checks
 * the shape and the data size against data_offset.
 */
typedef struct
{
  char kind;  /* 'i', 'u' or 'f' */
  guint size; /* bytes per element */
  gboolean is_signed;
  gboolean swap;    /* stored big-endian on this little-endian reading */
  gboolean fortran; /* column-major */
  int ndim;
  guint64 dims[8];
  gsize shape_offset; /* byte offset of the shape tuple, for messages */
  gsize data_offset;  /* first data byte */
} MsimNpyHeader;

gboolean msim_npy_parse_header (const guint8 *data, gsize length, const char *name,
                                gboolean want_float, MsimNpyHeader *header, GError **error);

/* Loads a 2-D float32 or float64 .npy file as a row-major double matrix
 * (C or Fortran order, either byte order).  *@rows x *@cols; *@values is
 * (transfer full, g_free).  Non-finite values are errors naming the row
 * and column.  MSIM_ERROR_INPUT / _IO. */
gboolean msim_npy_load_matrix (const char *path, gsize *rows, gsize *cols, double **values,
                               GError **error);

/* CRC-32 (IEEE 802.3, reflected, the zlib/PNG/gzip one): start with 0 and
 * feed consecutive pieces; msim_crc32 ("123456789") = 0xCBF43926. */
guint32 msim_crc32_update (guint32 crc, const void *data, gsize length);

/* Sets "NAME: byte OFFSET (line L, column C): MESSAGE" for text formats
 * whose lines may be megabytes long (JSON); line and column are computed
 * from @data only on this error path. */
void msim_trace_set_text_error (GError **error, int code, const char *name, const guint8 *data,
                                gsize length, gsize offset, const char *format, ...)
    G_GNUC_PRINTF (7, 8);

/* "1000 bytes", "512.0 GiB": like g_format_size_full (IEC) but with an
 * ASCII space, so messages stay greppable and testable (GLib puts a
 * no-break space between number and unit).  (transfer full) */
char *msim_trace_format_size (guint64 bytes);

/* Appends the decimal form of @v to @p and returns the new end; @p needs
 * 20 bytes.  printf costs about 10x more per number on the export paths. */
static inline char *
msim_trace_put_uint (char *p, guint64 v)
{
  char tmp[20];
  int n = 0;
  do
    {
      tmp[n++] = (char)('0' + v % 10);
      v /= 10;
    }
  while (v);
  while (n)
    *p++ = tmp[--n];
  return p;
}

/* Little-endian loads from possibly unaligned bytes. */
static inline guint16
msim_load_le16 (const guint8 *p)
{
  return (guint16)(p[0] | (p[1] << 8));
}

static inline guint32
msim_load_le32 (const guint8 *p)
{
  return (guint32)p[0] | ((guint32)p[1] << 8) | ((guint32)p[2] << 16) | ((guint32)p[3] << 24);
}

static inline guint64
msim_load_le64 (const guint8 *p)
{
  return (guint64)msim_load_le32 (p) | ((guint64)msim_load_le32 (p + 4) << 32);
}

static inline void
msim_store_le32 (guint8 *p, guint32 v)
{
  p[0] = (guint8)v;
  p[1] = (guint8)(v >> 8);
  p[2] = (guint8)(v >> 16);
  p[3] = (guint8)(v >> 24);
}

static inline void
msim_store_le64 (guint8 *p, guint64 v)
{
  msim_store_le32 (p, (guint32)v);
  msim_store_le32 (p + 4, (guint32)(v >> 32));
}

G_END_DECLS

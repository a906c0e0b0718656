/* Shared plumbing of the trace formats: atomic output files, CRC-32 and
 * error messages with positions. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "trace-private.h"

/* stdio's default buffer (4-8 KiB) means one write(2) per few hundred ids;
 * 1 MiB makes syscall cost negligible against formatting. */
#define OUT_BUFFER_BYTES (1u << 20)

MsimTraceOut *
msim_trace_out_open (const char *path, GError **error)
{
  /* The temporary file lives in the target's directory because rename(2)
   * is atomic only within one file system; g_file_open_tmp would put it in
   * /tmp.  g_file_set_contents does the same dance but needs the whole
   * output in one buffer, which for a large trace is a second copy of it. */
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmpl = g_strdup_printf ("%s%c.%s.XXXXXX", dir, G_DIR_SEPARATOR, base);
  int fd = g_mkstemp_full (tmpl, O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot create the output file: %s", path,
                   g_strerror (saved));
      return NULL;
    }
  FILE *fp = fdopen (fd, "wb");
  if (fp == NULL)
    {
      int saved = errno;
      close (fd);
      g_unlink (tmpl);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot create the output file: %s", path,
                   g_strerror (saved));
      return NULL;
    }
  setvbuf (fp, NULL, _IOFBF, OUT_BUFFER_BYTES);
  MsimTraceOut *out = g_new0 (MsimTraceOut, 1);
  out->fp = fp;
  out->path = g_strdup (path);
  out->tmp_path = g_steal_pointer (&tmpl);
  return out;
}

static void
out_free (MsimTraceOut *out)
{
  g_free (out->path);
  g_free (out->tmp_path);
  g_free (out);
}

void
msim_trace_out_set_error (MsimTraceOut *out, GError **error, const char *what)
{
  int saved = errno;
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: %s failed: %s", out->path, what,
               saved ? g_strerror (saved) : "write error");
}

void
msim_trace_out_abort (MsimTraceOut *out)
{
  if (out == NULL)
    return;
  fclose (out->fp);
  g_unlink (out->tmp_path);
  out_free (out);
}

gboolean
msim_trace_out_commit (MsimTraceOut *out, GError **error)
{
  errno = 0;
  /* fsync before rename: otherwise a crash can leave the new name pointing
   * at a file whose data never reached the disk (the ext4 zero-length file
   * problem). */
  if (ferror (out->fp) || fflush (out->fp) != 0 || fsync (fileno (out->fp)) != 0)
    {
      msim_trace_out_set_error (out, error, "writing");
      msim_trace_out_abort (out);
      return FALSE;
    }
  if (fclose (out->fp) != 0)
    {
      msim_trace_out_set_error (out, error, "closing");
      g_unlink (out->tmp_path);
      out_free (out);
      return FALSE;
    }
  if (g_rename (out->tmp_path, out->path) != 0)
    {
      int saved = errno;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot replace the file: %s", out->path,
                   g_strerror (saved));
      g_unlink (out->tmp_path);
      out_free (out);
      return FALSE;
    }
  out_free (out);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* CRC-32, slice-by-8                                                   */
/* ------------------------------------------------------------------ */

/* Eight tables let the loop fold 8 bytes per step (about 5x the speed of
 * the byte-at-a-time table, i.e. > 1 GB/s): verifying a multi-gigabyte
 * trace should cost about as much as reading it. */
static guint32 crc_table[8][256];

static void
crc_init (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done))
    {
      for (guint n = 0; n < 256; n++)
        {
          guint32 c = n;
          for (int b = 0; b < 8; b++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
          crc_table[0][n] = c;
        }
      for (guint n = 0; n < 256; n++)
        for (int j = 1; j < 8; j++)
          crc_table[j][n] = (crc_table[j - 1][n] >> 8) ^ crc_table[0][crc_table[j - 1][n] & 0xff];
      g_once_init_leave (&done, 1);
    }
}

guint32
msim_crc32_update (guint32 crc, const void *data, gsize length)
{
  crc_init ();
  const guint8 *p = data;
  crc = ~crc;
  while (length >= 8)
    {
      guint32 lo = msim_load_le32 (p) ^ crc;
      guint32 hi = msim_load_le32 (p + 4);
      crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff]
            ^ crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff]
            ^ crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff]
            ^ crc_table[0][hi >> 24];
      p += 8;
      length -= 8;
    }
  while (length--)
    crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

char *
msim_trace_format_size (guint64 bytes)
{
  static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
  if (bytes < 1024)
    return g_strdup_printf ("%" G_GUINT64_FORMAT " bytes", bytes);
  double v = (double)bytes;
  guint u = 0;
  for (v /= 1024; v >= 1024 && u + 1 < G_N_ELEMENTS (units); u++)
    v /= 1024;
  return g_strdup_printf ("%.1f %s", v, units[u]);
}

void
msim_trace_set_text_error (GError **error, int code, const char *name, const guint8 *data,
                           gsize length, gsize offset, const char *format, ...)
{
  gsize line = 1, col = 1;
  offset = MIN (offset, length);
  for (gsize i = 0; i < offset; i++)
    {
      if (data[i] == '\n')
        {
          line++;
          col = 1;
        }
      else
        col++;
    }
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, MSIM_ERROR, code,
               "%s: byte %" G_GSIZE_FORMAT " (line %" G_GSIZE_FORMAT ", column %" G_GSIZE_FORMAT
               "): %s",
               name, offset, line, col, msg);
}

/* The native moesim trace format (.mtr), for traces too large for text.
 *
 * All integers little-endian.  Version 1 layout:
 *
 *   offset size  field
 *   0      8     magic "\x89MTRACE\n" (the 0x89 and the newline catch 7-bit
 *                and text-mode transfers, as PNG's magic does)
 *   8      4     version (1)
 *   12     4     header bytes: 64 + 24 * sections
 *   16     8     tokens T
 *   24     4     layers L
 *   28     4     k
 *   32     4     experts E
 *   36     4     flags (MsimTraceFlags: 1 weights, 2 sequences, 4 drops:
 *                 ids may be -1)
 *   40     4     id dtype (1 = int16; room for an int32 variant)
 *   44     4     number of sections
 *   48     8     total file bytes (truncation is caught before any CRC)
 *   56     4     reserved, 0
 *   60     4     CRC-32 of the header bytes with this field read as 0
 *   64     24*n  section table: kind u32, CRC-32 u32, offset u64, bytes u64
 *
 * Sections, each starting on a 64-byte boundary in this order:
 *   1 ids        int16 [L][T][k]   (the in-memory layout)
 *   2 weights    float32 [L][T][k] (flag 1)
 *   3 sequences  uint32 [T]        (flag 2)
 *   4 positions  uint32 [T]        (flag 2)
 *
 * Because sections hold exactly the in-memory arrays at aligned offsets, a
 * little-endian host maps the file and points the trace into the mapping:
 * no copy, no heap, and a trace larger than RAM is paged by the kernel.
 * Loading still reads every page once to verify the CRCs and id ranges,
 * in 1 MiB blocks so the check of a block runs while it is in cache. */
#include <string.h>

#include "trace-private.h"

#define NATIVE_MAGIC   "\x89MTRACE\n"
#define NATIVE_VERSION 1
#define FIXED_HEADER   64
#define SECTION_ENTRY  24
#define ALIGN          64
#define DTYPE_INT16    1
#define MAX_SECTIONS   4
#define CHECK_BLOCK    (1u << 20)

enum
{
  SEC_IDS = 1,
  SEC_WEIGHTS,
  SEC_SEQUENCES,
  SEC_POSITIONS,
};

static const char *const sec_names[] = { "?", "ids", "weights", "sequences", "positions" };

typedef struct
{
  guint32 kind;
  guint32 crc;
  guint64 offset;
  guint64 bytes;
} Section;

static guint64
align_up (guint64 v)
{
  return (v + ALIGN - 1) / ALIGN * ALIGN;
}

/* Sections a trace of these dimensions has, with their sizes; offsets are
 * laid out back to back from the end of the header. */
static guint
plan_sections (guint64 tokens, guint64 layers, guint64 k, guint32 flags, Section *sec)
{
  guint n = 0;
  guint64 cells = tokens * layers * k; /* callers checked for overflow */
  sec[n++] = (Section){ SEC_IDS, 0, 0, cells * sizeof (MsimExpertId) };
  if (flags & MSIM_TRACE_WEIGHTS)
    sec[n++] = (Section){ SEC_WEIGHTS, 0, 0, cells * sizeof (float) };
  if (flags & MSIM_TRACE_SEQUENCES)
    {
      sec[n++] = (Section){ SEC_SEQUENCES, 0, 0, tokens * sizeof (guint32) };
      sec[n++] = (Section){ SEC_POSITIONS, 0, 0, tokens * sizeof (guint32) };
    }
  guint64 off = align_up (FIXED_HEADER + SECTION_ENTRY * n);
  for (guint i = 0; i < n; i++)
    {
      sec[i].offset = off;
      off = align_up (off + sec[i].bytes);
    }
  return n;
}

static MsimTrace *G_GNUC_PRINTF (4, 5)
    fail_at (GError **error, const char *name, gsize offset, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: byte %" G_GSIZE_FORMAT ": %s", name,
               offset, msg);
  return NULL;
}

/* Converts @count little-endian elements of @size bytes from @src to host
 * order in @dst (a memcpy on little-endian hosts). */
static void
copy_le (void *dst, const guint8 *src, gsize count, gsize size)
{
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  memcpy (dst, src, count * size);
#else
  guint8 *d = dst;
  for (gsize i = 0; i < count; i++)
    for (gsize b = 0; b < size; b++)
      d[i * size + b] = src[i * size + size - 1 - b];
#endif
}

MsimTrace *
msim_trace_read_native (const guint8 *data, gsize length, GMappedFile *mapping, const char *name,
                        GError **error)
{
  if (length < 8 || memcmp (data, NATIVE_MAGIC, 8) != 0)
    return fail_at (error, name, 0, "not a moesim .mtr trace (bad magic)");
  if (length < FIXED_HEADER)
    return fail_at (error, name, length,
                    "truncated: the file ends inside the %d-byte header (%" G_GSIZE_FORMAT
                    " bytes)",
                    FIXED_HEADER, length);
  guint32 version = msim_load_le32 (data + 8);
  if (version != NATIVE_VERSION)
    return fail_at (error, name, 8,
                    "format version %u; this moesim reads version %d (a newer moesim wrote it?)",
                    version, NATIVE_VERSION);
  guint32 header_bytes = msim_load_le32 (data + 12);
  guint64 tokens = msim_load_le64 (data + 16);
  guint32 layers = msim_load_le32 (data + 24);
  guint32 k = msim_load_le32 (data + 28);
  guint32 experts = msim_load_le32 (data + 32);
  guint32 flags = msim_load_le32 (data + 36);
  guint32 dtype = msim_load_le32 (data + 40);
  guint32 nsec = msim_load_le32 (data + 44);
  guint64 file_bytes = msim_load_le64 (data + 48);
  if (nsec == 0 || nsec > MAX_SECTIONS || header_bytes != FIXED_HEADER + SECTION_ENTRY * nsec)
    return fail_at (error, name, 12,
                    "corrupt header: %u sections in a %u-byte header (at most %d sections, "
                    "64 + 24 bytes each)",
                    nsec, header_bytes, MAX_SECTIONS);
  if (length < header_bytes)
    return fail_at (error, name, length,
                    "truncated: the file ends inside the %u-byte header (%" G_GSIZE_FORMAT
                    " bytes)",
                    header_bytes, length);
  guint8 hdr[FIXED_HEADER + SECTION_ENTRY * MAX_SECTIONS];
  memcpy (hdr, data, header_bytes);
  guint32 stored_crc = msim_load_le32 (hdr + 60);
  msim_store_le32 (hdr + 60, 0);
  guint32 crc = msim_crc32_update (0, hdr, header_bytes);
  if (crc != stored_crc)
    return fail_at (error, name, 60,
                    "header checksum mismatch (stored %08x, computed %08x): the file is corrupt",
                    stored_crc, crc);
  /* With the header CRC intact, the remaining checks catch writers that
   * lie rather than bits that flipped. */
  if (file_bytes != length)
    {
      if (length < file_bytes)
        return fail_at (error, name, length,
                        "truncated: the header records %" G_GUINT64_FORMAT
                        " bytes, the file has %" G_GSIZE_FORMAT,
                        file_bytes, length);
      return fail_at (error, name, (gsize)file_bytes,
                      "%" G_GSIZE_FORMAT " unexpected bytes after the recorded end of the trace",
                      length - (gsize)file_bytes);
    }
  if (flags & ~(guint32)MSIM_TRACE_ALL_FLAGS)
    return fail_at (error, name, 36, "unknown flag bits 0x%x (written by a newer moesim?)",
                    flags & ~(guint32)MSIM_TRACE_ALL_FLAGS);
  if (dtype != DTYPE_INT16)
    return fail_at (error, name, 40, "expert id dtype %u is not supported (1 = int16)", dtype);
  if (tokens == 0 || layers == 0 || k == 0 || experts == 0 || experts > MSIM_TRACE_MAX_EXPERTS)
    return fail_at (error, name, 16,
                    "impossible dimensions %" G_GUINT64_FORMAT " tokens x %u layers x k=%u, %u "
                    "experts",
                    tokens, layers, k, experts);
  guint64 total = 0;
  if (tokens > G_MAXSIZE || !msim_trace_bytes_needed (tokens, layers, k, flags, &total)
      || total > G_MAXSIZE)
    return fail_at (error, name, 16,
                    "%" G_GUINT64_FORMAT " tokens x %u layers x k=%u do not fit in memory", tokens,
                    layers, k);
  Section want[MAX_SECTIONS];
  guint nwant = plan_sections (tokens, layers, k, flags, want);
  if (nwant != nsec)
    return fail_at (error, name, 44, "%u sections, but flags 0x%x imply %u", nsec, flags, nwant);
  Section sec[MAX_SECTIONS];
  for (guint i = 0; i < nsec; i++)
    {
      const guint8 *e = data + FIXED_HEADER + SECTION_ENTRY * i;
      sec[i].kind = msim_load_le32 (e);
      sec[i].crc = msim_load_le32 (e + 4);
      sec[i].offset = msim_load_le64 (e + 8);
      sec[i].bytes = msim_load_le64 (e + 16);
      gsize at = FIXED_HEADER + SECTION_ENTRY * i;
      if (sec[i].kind != want[i].kind || sec[i].bytes != want[i].bytes)
        return fail_at (error, name, at,
                        "section %u is kind %u with %" G_GUINT64_FORMAT
                        " bytes; the dimensions imply '%s' with %" G_GUINT64_FORMAT,
                        i, sec[i].kind, sec[i].bytes, sec_names[want[i].kind], want[i].bytes);
      gboolean overlaps = i > 0 ? sec[i].offset < sec[i - 1].offset + sec[i - 1].bytes
                                : sec[i].offset < header_bytes;
      if (sec[i].offset % ALIGN != 0 || overlaps)
        return fail_at (error, name, at + 8,
                        "section '%s' offset %" G_GUINT64_FORMAT
                        " is misaligned or overlaps what precedes it",
                        sec_names[sec[i].kind], sec[i].offset);
      if (sec[i].offset > length || sec[i].bytes > length - sec[i].offset)
        return fail_at (error, name, length,
                        "truncated: section '%s' needs bytes %" G_GUINT64_FORMAT
                        "..%" G_GUINT64_FORMAT ", the file has %" G_GSIZE_FORMAT,
                        sec_names[sec[i].kind], sec[i].offset, sec[i].offset + sec[i].bytes,
                        length);
    }

  /* Verify the checksums, and the ids' range while each block is hot. */
  int lowest = (flags & MSIM_TRACE_DROPS) ? MSIM_EXPERT_NONE : 0;
  for (guint i = 0; i < nsec; i++)
    {
      const guint8 *p = data + sec[i].offset;
      guint32 c = 0;
      for (guint64 done = 0; done < sec[i].bytes;)
        {
          gsize n = (gsize)MIN ((guint64)CHECK_BLOCK, sec[i].bytes - done);
          c = msim_crc32_update (c, p + done, n);
          if (sec[i].kind == SEC_IDS)
            for (gsize b = 0; b < n; b += 2)
              {
                gint16 e = (gint16)msim_load_le16 (p + done + b);
                if (G_UNLIKELY (e < lowest || (e >= 0 && (guint32)e >= experts)))
                  {
                    gsize cell = (gsize)(done + b) / 2;
                    gsize per_layer = (gsize)tokens * k;
                    return fail_at (error, name, (gsize)(sec[i].offset + done + b),
                                    "token %" G_GSIZE_FORMAT ", layer %" G_GSIZE_FORMAT
                                    ", rank %" G_GSIZE_FORMAT ": expert id %d is outside "
                                    "[0, %u)",
                                    (cell % per_layer) / k, cell / per_layer, cell % k, e, experts);
                  }
              }
          done += n;
        }
      if (c != sec[i].crc)
        return fail_at (error, name, (gsize)sec[i].offset,
                        "section '%s' (%" G_GUINT64_FORMAT
                        " bytes) checksum mismatch (stored %08x, computed %08x): the file is "
                        "corrupt",
                        sec_names[sec[i].kind], sec[i].bytes, sec[i].crc, c);
    }

  MsimTrace *t;
  gboolean in_place
      = mapping != NULL && G_BYTE_ORDER == G_LITTLE_ENDIAN && ((guintptr)data % ALIGN) == 0;
  if (in_place)
    {
      /* The mapping is private and writable (copy-on-write), so generators
       * and routers may edit a loaded trace without touching the file. */
      t = msim_trace_new_mapped (g_mapped_file_ref (mapping), (gsize)tokens, layers, k, experts,
                                 flags);
      guint8 *base = (guint8 *)g_mapped_file_get_contents (mapping);
      for (guint i = 0; i < nsec; i++)
        {
          void *arr = base + sec[i].offset;
          switch (sec[i].kind)
            {
              case SEC_IDS:
                t->ids = arr;
                break;
              case SEC_WEIGHTS:
                t->weights = arr;
                break;
              case SEC_SEQUENCES:
                t->sequences = arr;
                break;
              default:
                t->positions = arr;
                break;
            }
        }
      return t;
    }
  t = msim_trace_alloc (name, (gsize)tokens, layers, k, experts, flags, error);
  if (t == NULL)
    return NULL;
  for (guint i = 0; i < nsec; i++)
    {
      const guint8 *src = data + sec[i].offset;
      switch (sec[i].kind)
        {
          case SEC_IDS:
            copy_le (t->ids, src, (gsize)sec[i].bytes / 2, 2);
            break;
          case SEC_WEIGHTS:
            copy_le (t->weights, src, (gsize)sec[i].bytes / 4, 4);
            break;
          case SEC_SEQUENCES:
            copy_le (t->sequences, src, (gsize)sec[i].bytes / 4, 4);
            break;
          default:
            copy_le (t->positions, src, (gsize)sec[i].bytes / 4, 4);
            break;
        }
    }
  return t;
}

/* Writes @count elements of @size bytes in little-endian order, folding
 * them into *crc, then zero padding up to the next section boundary. */
static void
write_section (FILE *fp, const void *src, gsize count, gsize size, guint32 *crc)
{
  const guint8 *p = src;
  gsize bytes = count * size;
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  for (gsize done = 0; done < bytes;)
    {
      gsize n = MIN ((gsize)CHECK_BLOCK, bytes - done);
      *crc = msim_crc32_update (*crc, p + done, n);
      fwrite (p + done, 1, n, fp);
      done += n;
    }
#else
  guint8 buf[4096];
  for (gsize done = 0; done < bytes;)
    {
      gsize n = MIN (sizeof buf, bytes - done);
      for (gsize i = 0; i < n; i += size)
        for (gsize b = 0; b < size; b++)
          buf[i + b] = p[done + i + size - 1 - b];
      *crc = msim_crc32_update (*crc, buf, n);
      fwrite (buf, 1, n, fp);
      done += n;
    }
#endif
  static const guint8 zeros[ALIGN] = { 0 };
  gsize pad = (gsize)(align_up (bytes) - bytes);
  fwrite (zeros, 1, pad, fp);
}

gboolean
msim_trace_write_native (const MsimTrace *trace, MsimTraceOut *out, GError **error)
{
  Section sec[MAX_SECTIONS];
  guint nsec = plan_sections (trace->tokens, trace->layers, trace->k, trace->flags, sec);
  guint32 header_bytes = FIXED_HEADER + SECTION_ENTRY * nsec;
  /* Data first, header last: the CRCs are known only after streaming the
   * sections, and computing them in a separate pass would read a large
   * trace twice. */
  static const guint8 zeros[ALIGN * 4] = { 0 };
  fwrite (zeros, 1, (gsize)sec[0].offset, out->fp);
  for (guint i = 0; i < nsec; i++)
    {
      gsize cells = trace->tokens * trace->layers * trace->k;
      switch (sec[i].kind)
        {
          case SEC_IDS:
            write_section (out->fp, trace->ids, cells, 2, &sec[i].crc);
            break;
          case SEC_WEIGHTS:
            write_section (out->fp, trace->weights, cells, 4, &sec[i].crc);
            break;
          case SEC_SEQUENCES:
            write_section (out->fp, trace->sequences, trace->tokens, 4, &sec[i].crc);
            break;
          default:
            write_section (out->fp, trace->positions, trace->tokens, 4, &sec[i].crc);
            break;
        }
    }
  guint64 file_bytes = sec[nsec - 1].offset + align_up (sec[nsec - 1].bytes);

  guint8 hdr[FIXED_HEADER + SECTION_ENTRY * MAX_SECTIONS] = { 0 };
  memcpy (hdr, NATIVE_MAGIC, 8);
  msim_store_le32 (hdr + 8, NATIVE_VERSION);
  msim_store_le32 (hdr + 12, header_bytes);
  msim_store_le64 (hdr + 16, trace->tokens);
  msim_store_le32 (hdr + 24, trace->layers);
  msim_store_le32 (hdr + 28, trace->k);
  msim_store_le32 (hdr + 32, trace->experts);
  msim_store_le32 (hdr + 36, trace->flags);
  msim_store_le32 (hdr + 40, DTYPE_INT16);
  msim_store_le32 (hdr + 44, nsec);
  msim_store_le64 (hdr + 48, file_bytes);
  for (guint i = 0; i < nsec; i++)
    {
      guint8 *e = hdr + FIXED_HEADER + SECTION_ENTRY * i;
      msim_store_le32 (e, sec[i].kind);
      msim_store_le32 (e + 4, sec[i].crc);
      msim_store_le64 (e + 8, sec[i].offset);
      msim_store_le64 (e + 16, sec[i].bytes);
    }
  msim_store_le32 (hdr + 60, msim_crc32_update (0, hdr, header_bytes));
  if (fflush (out->fp) != 0 || fseeko (out->fp, 0, SEEK_SET) != 0)
    {
      msim_trace_out_set_error (out, error, "writing");
      return FALSE;
    }
  fwrite (hdr, 1, header_bytes, out->fp);
  if (ferror (out->fp))
    {
      msim_trace_out_set_error (out, error, "writing");
      return FALSE;
    }
  return TRUE;
}

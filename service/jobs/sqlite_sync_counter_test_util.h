// Tests only: counts the flushes to disk (xSync) SQLite asks for, on every
// file it opens through the default VFS while a SqliteSyncCounter lives. It is
// registered as the default VFS and hands every call to the real one, so
// the files, locks and shared memory are the real ones; only xSync is
// counted on its way through. Create it before the store opens its file,
// and close every connection before it goes (they point at it).
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_SQLITE_SYNC_COUNTER_TEST_UTIL_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_SQLITE_SYNC_COUNTER_TEST_UTIL_H_

#include <sqlite3.h>

#include <atomic>

namespace blueprintsync::testing {

class SqliteSyncCounter {
 public:
  SqliteSyncCounter() : real_(sqlite3_vfs_find(nullptr)) {
    vfs_ = *real_;
    vfs_.zName = "bps_sync_counter";
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.pAppData = this;
    vfs_.xOpen = &Open;
    sqlite3_vfs_register(&vfs_, /*makeDflt=*/1);
  }
  ~SqliteSyncCounter() { sqlite3_vfs_unregister(&vfs_); }
  SqliteSyncCounter(const SqliteSyncCounter&) = delete;
  SqliteSyncCounter& operator=(const SqliteSyncCounter&) = delete;

  // Flushes asked for so far, on any file; on write-ahead logs only.
  int syncs() const { return syncs_.load(); }
  int wal_syncs() const { return wal_syncs_.load(); }
  // While set, every flush of a write-ahead log fails (SQLITE_IOERR_FSYNC),
  // as an fsync that returns EIO does.
  void FailWalSyncs(bool fail) { fail_wal_syncs_ = fail; }

 private:
  // Our file, followed in the same allocation by the real VFS's.
  struct File {
    sqlite3_file base;
    sqlite3_file* real;
    SqliteSyncCounter* counter;
    bool wal;
  };
  static sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }

  static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                  int* out_flags) {
    auto* self = static_cast<SqliteSyncCounter*>(vfs->pAppData);
    auto* f = reinterpret_cast<File*>(file);
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    f->counter = self;
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->base.pMethods = nullptr;
    const int rc = self->real_->xOpen(self->real_, name, f->real, flags, out_flags);
    if (f->real->pMethods != nullptr) f->base.pMethods = &kMethods;
    return rc;
  }

  static int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
  static int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
    return Real(f)->pMethods->xRead(Real(f), buf, n, off);
  }
  static int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
    return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
  }
  static int Truncate(sqlite3_file* f, sqlite3_int64 size) {
    return Real(f)->pMethods->xTruncate(Real(f), size);
  }
  static int Sync(sqlite3_file* f, int flags) {
    File* file = reinterpret_cast<File*>(f);
    ++file->counter->syncs_;
    if (file->wal) {
      ++file->counter->wal_syncs_;
      if (file->counter->fail_wal_syncs_) return SQLITE_IOERR_FSYNC;
    }
    return Real(f)->pMethods->xSync(Real(f), flags);
  }
  static int FileSize(sqlite3_file* f, sqlite3_int64* size) {
    return Real(f)->pMethods->xFileSize(Real(f), size);
  }
  static int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
  static int Unlock(sqlite3_file* f, int level) {
    return Real(f)->pMethods->xUnlock(Real(f), level);
  }
  static int CheckReservedLock(sqlite3_file* f, int* out) {
    return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
  }
  static int FileControl(sqlite3_file* f, int op, void* arg) {
    return Real(f)->pMethods->xFileControl(Real(f), op, arg);
  }
  static int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
  static int DeviceCharacteristics(sqlite3_file* f) {
    return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
  }
  static int ShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return Real(f)->pMethods->xShmMap(Real(f), page, size, extend, out);
  }
  static int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
    return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
  static int ShmUnmap(sqlite3_file* f, int del) {
    return Real(f)->pMethods->xShmUnmap(Real(f), del);
  }
  // No memory-mapped reads (SQLite falls back to xRead).
  static int Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
    *out = nullptr;
    return SQLITE_OK;
  }
  static int Unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

  static constexpr sqlite3_io_methods kMethods = {
      3,         &Close,      &Read,   &Write,  &Truncate,          &Sync,
      &FileSize, &Lock,       &Unlock, &CheckReservedLock,          &FileControl,
      &SectorSize, &DeviceCharacteristics, &ShmMap, &ShmLock, &ShmBarrier,
      &ShmUnmap, &Fetch,      &Unfetch};

  sqlite3_vfs* const real_;
  sqlite3_vfs vfs_;
  std::atomic<int> syncs_{0};
  std::atomic<int> wal_syncs_{0};
  std::atomic<bool> fail_wal_syncs_{false};
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_SQLITE_SYNC_COUNTER_TEST_UTIL_H_

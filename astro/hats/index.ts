/**
 * Public face of astro/hats: reading and writing HATS (HEALPix-sharded
 * Parquet) catalogs, as produced by hats-import / LSDB.
 */
export type { HatsCatalog, HatsCollectionInfo, HatsPartition, OpenHatsCatalogOptions } from './catalog.js';
export { hatsLeafPath, isHatsCatalogDir, openHatsCatalog } from './catalog.js';
export { partitionsForPixels, partitionsInCone } from './search.js';
export type { CompiledWriteOptions, HatsPartitionMeta, WriteHatsCatalogOptions, WriteHatsMetadataInput } from './write.js';
export { compileWriteHatsOptions, planHatsPartitions, registerHealpix29, writeHatsCatalog, writeHatsMetadata } from './write.js';
export { duckInstance, ensureScalarFunction, setSharedDuckThreads, partitionViewSql, readParquetSql, sqlIdent, sqlString, withDuck } from './duck.js';
export { parseProperties, formatProperties, readPropertiesFile } from './properties.js';
export { parsePartitionInfo, formatPartitionInfo, readPartitionInfo, MAX_HATS_ORDER } from './partition-info.js';
export type { PartitionInfoRow } from './partition-info.js';
export { parquetRowCount, readFileMetaData, summarizeFooter } from './parquet-footer.js';
export type { FooterSummary, RowGroupSummary } from './parquet-footer.js';
export * from './errors.js';
